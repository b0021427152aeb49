package luafixture

import (
	"io/fs"
	"net/http"
	"os"
	"slices"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/scripts/internal/fakekit"
	"github.com/vmarket/vmarket/scripts/kassa24/kassa24fake"
	"github.com/vmarket/vmarket/scripts/sftpfake"
	"github.com/vmarket/vmarket/scripts/vcc/vccfake"
	"github.com/vmarket/vmarket/scripts/vcp/vcpfake"
)

// control collects the functions of the test-only host module "fake".
type control struct {
	funcs  map[string]lua.LGFunction
	faults []*fakekit.Faults
}

func (c *control) add(name string, fn lua.LGFunction) {
	if c.funcs == nil {
		c.funcs = map[string]lua.LGFunction{}
	}
	c.funcs[name] = fn
}

// addFaults adds prefix+fail_next(n [, status]), prefix+reject_auth_next(n)
// and prefix+delay(seconds) for one fake's failure injector; reset clears
// them.
func (c *control) addFaults(prefix string, f *fakekit.Faults) {
	c.faults = append(c.faults, f)
	c.add(prefix+"fail_next", func(L *lua.LState) int {
		f.FailNext(L.CheckInt(1), L.OptInt(2, http.StatusInternalServerError))
		return 0
	})
	c.add(prefix+"reject_auth_next", func(L *lua.LState) int {
		f.RejectAuthNext(L.CheckInt(1))
		return 0
	})
	c.add(prefix+"delay", func(L *lua.LState) int {
		f.SetDelay(time.Duration(float64(L.CheckNumber(1)) * float64(time.Second)))
		return 0
	})
}

// module is the "fake" host module: the collected functions and reset().
func (c *control) module() runtime.HostModule {
	funcs := make(map[string]lua.LGFunction, len(c.funcs)+1)
	for name, fn := range c.funcs {
		funcs[name] = fn
	}
	faults := slices.Clone(c.faults)
	funcs["reset"] = func(*lua.LState) int {
		for _, f := range faults {
			f.FailNext(0, 0)
			f.RejectAuthNext(0)
			f.SetDelay(0)
		}
		return 0
	}
	return funcTable(funcs)
}

// funcTable is a host module whose table holds funcs.
func funcTable(funcs map[string]lua.LGFunction) runtime.HostModule {
	return runtime.HostModuleFunc(func(L *lua.LState) *lua.LTable {
		t := L.NewTable()
		for name, fn := range funcs {
			t.RawSetString(name, L.NewFunction(fn))
		}
		return t
	})
}

func field(t *lua.LTable, key string) string { return lua.LVAsString(t.RawGetString(key)) }

// addVCC adds, for a VCC fake:
//
//	count{resource=, orderNo=, accountNo=} -> calls matching every given field
//	balance(accountNo) -> fen
//	withdrawal(orderNo) -> {status, amount (fen), remark, withdrawNo, machineId} or nil
func (c *control) addVCC(s *vccfake.Server) {
	c.addFaults("", &s.Faults)
	c.add("count", func(L *lua.LState) int {
		f := L.OptTable(1, L.NewTable())
		res, order, acct := field(f, "resource"), field(f, "orderNo"), field(f, "accountNo")
		L.Push(lua.LNumber(s.Count(func(c vccfake.Call) bool {
			return (res == "" || c.Resource == res) && (order == "" || c.Params["orderNo"] == order) &&
				(acct == "" || c.Params["accountNo"] == acct)
		})))
		return 1
	})
	c.add("balance", func(L *lua.LState) int {
		b, _ := s.Balance(L.CheckString(1))
		L.Push(lua.LNumber(b))
		return 1
	})
	c.add("withdrawal", func(L *lua.LState) int {
		w, ok := s.Withdrawal(L.CheckString(1))
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		t := L.NewTable()
		t.RawSetString("status", lua.LString(w.Status))
		t.RawSetString("amount", lua.LNumber(w.Amount))
		t.RawSetString("remark", lua.LString(w.Remark))
		t.RawSetString("withdrawNo", lua.LString(w.WithdrawNo))
		t.RawSetString("machineId", lua.LString(w.MachineID))
		L.Push(t)
		return 1
	})
}

// addReconciliation adds, for the VCC fake's SFTP server:
//
//	sftp_fail_next, sftp_reject_auth_next, sftp_delay
//	put_reconciliation() -> path, day (yyyymmdd): today's file from the VCC fake's withdrawals
//	put_file(path, text), remove_file(path)
func (c *control) addReconciliation(vcc *vccfake.Server, sftp *sftpfake.Server) {
	c.addFaults("sftp_", &sftp.Faults)
	c.add("put_reconciliation", func(L *lua.LState) int {
		now := time.Now()
		p := vccfake.ReconciliationPath(now)
		sftp.PutFile(p, vcc.ReconciliationFile(now))
		L.Push(lua.LString(p))
		L.Push(lua.LString(now.In(vccfake.ChinaTime()).Format("20060102")))
		return 2
	})
	c.add("put_file", func(L *lua.LState) int {
		sftp.PutFile(L.CheckString(1), []byte(L.CheckString(2)))
		return 0
	})
	c.add("remove_file", func(L *lua.LState) int {
		sftp.Remove(L.CheckString(1))
		return 0
	})
}

// addVCP adds, for a VCP fake whose test key is key:
//
//	count{endpoint=, site=} -> calls matching every given field
//	scopes(...) replaces the test key's scopes (none: all of them)
func (c *control) addVCP(s *vcpfake.Server, key string) {
	c.addFaults("", &s.Faults)
	c.add("count", func(L *lua.LState) int {
		f := L.OptTable(1, L.NewTable())
		ep, site := field(f, "endpoint"), field(f, "site")
		L.Push(lua.LNumber(s.Count(func(c vcpfake.Call) bool {
			return (ep == "" || c.Endpoint == ep) && (site == "" || c.SiteID == site)
		})))
		return 1
	})
	c.add("scopes", func(L *lua.LState) int {
		var scopes []string
		for i := 1; i <= L.GetTop(); i++ {
			scopes = append(scopes, L.CheckString(i))
		}
		if len(scopes) == 0 {
			scopes = allVCPScopes()
		}
		s.SetKey(key, scopes...)
		return 0
	})
}

// addKassa24 adds, for a Kassa24 fake:
//
//	count{resource=, action=} -> calls matching every given field (all calls without a filter)
//	last_call() -> {page_size, current_page, sort, params, body} of the last call, or nil
//	last_params() -> params of the last call, or nil
func (c *control) addKassa24(s *kassa24fake.Server) {
	c.addFaults("", &s.Faults)
	c.add("count", func(L *lua.LState) int {
		f := L.OptTable(1, L.NewTable())
		L.Push(lua.LNumber(s.CallCount(field(f, "resource"), field(f, "action"))))
		return 1
	})
	last := func() (kassa24fake.Call, bool) {
		calls := s.Calls()
		if len(calls) == 0 {
			return kassa24fake.Call{}, false
		}
		return calls[len(calls)-1], true
	}
	params := func(L *lua.LState, c kassa24fake.Call) *lua.LTable {
		p := L.NewTable()
		for key, v := range c.Params {
			p.RawSetString(key, lua.LString(v))
		}
		return p
	}
	c.add("last_call", func(L *lua.LState) int {
		c, ok := last()
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		t := L.NewTable()
		t.RawSetString("page_size", lua.LNumber(c.PageSize))
		t.RawSetString("current_page", lua.LNumber(c.CurrentPage))
		t.RawSetString("sort", lua.LString(c.Sort))
		t.RawSetString("body", lua.LString(c.Body))
		t.RawSetString("params", params(L, c))
		L.Push(t)
		return 1
	})
	c.add("last_params", func(L *lua.LState) int {
		c, ok := last()
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(params(L, c))
		return 1
	})
}

// templateModule is the host module "template": template.source(file)
// returns the text of a file of dir (a template folder), so a Lua test can
// run a lifecycle script with load(template.source("start.lua"))(input).
// Files outside dir cannot be named.
func templateModule(dir string) runtime.HostModule {
	fsys := os.DirFS(dir)
	return funcTable(map[string]lua.LGFunction{
		"source": func(L *lua.LState) int { return pushFile(L, fsys, "template.source", L.CheckString(1)) },
	})
}

// sourceModule is the host module "source": source.script() returns the
// text of dir/file, a payment source's script.
func sourceModule(dir, file string) runtime.HostModule {
	fsys := os.DirFS(dir)
	return funcTable(map[string]lua.LGFunction{
		"script": func(L *lua.LState) int { return pushFile(L, fsys, "source.script", file) },
	})
}

// pushFile pushes the text of fsys's file name, or raises an error naming
// fn.
func pushFile(L *lua.LState, fsys fs.FS, fn, name string) int {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		L.RaiseError("%s: %v", fn, err)
	}
	L.Push(lua.LString(b))
	return 1
}
