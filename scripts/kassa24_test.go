package scripts_test

import (
	"fmt"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/kassa24/kassa24fake"
)

func TestKassa24Lua(t *testing.T) {
	const token = "kassa24-test-token"
	k := kassa24fake.New(kassa24fake.Config{Token: token})
	defer k.Close()
	day := func(d, h, m, s int) time.Time { return time.Date(2025, 1, d, h, m, s, 0, kassa24fake.Zone()) }
	for i := range 25 {
		k.AddPayment(kassa24fake.Payment{
			TransactionID: fmt.Sprintf("T%03d", i),
			TerminalID:    int64(100 + i%2),
			Amount:        int64(1000*(i+1) + 50),
			Date:          day(2, 10, i, 0),
			Account:       fmt.Sprintf("order-%d", i),
		})
	}
	k.AddPayment(kassa24fake.Payment{TransactionID: "E1", TerminalID: 100, Amount: 1, Date: day(1, 23, 59, 59), Account: "edge-before"})
	k.AddPayment(kassa24fake.Payment{TransactionID: "E2", TerminalID: 100, Amount: 1, Date: day(3, 0, 0, 0), Account: "edge-after"})
	k.AddPayment(kassa24fake.Payment{TransactionID: "E3", TerminalID: 100, Amount: 1, Date: day(2, 23, 59, 59), Account: "edge-end"})

	ctl := &control{
		main: &k.Faults,
		count: func(L *lua.LState, f *lua.LTable) int {
			return k.CallCount(str(f, "resource"), str(f, "action"))
		},
		extras: map[string]lua.LGFunction{
			// last_call() -> {page_size, current_page, sort, params, body}
			"last_call": func(L *lua.LState) int {
				calls := k.Calls()
				if len(calls) == 0 {
					L.Push(lua.LNil)
					return 1
				}
				c := calls[len(calls)-1]
				t := L.NewTable()
				t.RawSetString("page_size", lua.LNumber(c.PageSize))
				t.RawSetString("current_page", lua.LNumber(c.CurrentPage))
				t.RawSetString("sort", lua.LString(c.Sort))
				t.RawSetString("body", lua.LString(c.Body))
				p := L.NewTable()
				for key, v := range c.Params {
					p.RawSetString(key, lua.LString(v))
				}
				t.RawSetString("params", p)
				L.Push(t)
				return 1
			},
		},
	}
	runLuaTests(t, "kassa24", ctl, luatest.Config{
		Settings: map[string]string{
			"kassa24.base_url": k.URL(),
			"kassa24.token":    token,
			"kassa24.backoff":  "0.01",
		},
		SecretKeys: []string{"kassa24.token"},
	})
}
