package templates_test

import (
	"net/http"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/vcc/vccfake"
)

// TestVCCGasTopupLua runs the Gas Top-up template's Lua tests against the
// VCC fake (HTTPS with its own CA, passed as a root).
func TestVCCGasTopupLua(t *testing.T) {
	const apiKey = "vcc-topup-key"
	vcc := vccfake.New(vccfake.Config{
		APIKey: apiKey,
		Accounts: []vccfake.Account{
			{AccountNo: "880001", CustomerName: "陈大文", Address: "香港九龙旺角弥敦道88号", CardNo: "C-01", Balance: 10_000_000},
			{AccountNo: "880002", CustomerName: "李小龙", Balance: 100_000, Status: "FROZEN"},
			{AccountNo: "880003", CustomerName: "黄飞鸿", Balance: 1000},
			{AccountNo: "880004", CustomerName: "李明", Balance: 1_000_000},
		},
	})
	defer vcc.Close()
	fake := luaFuncs(map[string]lua.LGFunction{
		// count{resource=, orderNo=, accountNo=} counts the fake's calls.
		"count": func(L *lua.LState) int {
			f := L.OptTable(1, L.NewTable())
			res, order, acct := optString(f, "resource"), optString(f, "orderNo"), optString(f, "accountNo")
			L.Push(lua.LNumber(vcc.Count(func(c vccfake.Call) bool {
				return (res == "" || c.Resource == res) && (order == "" || c.Params["orderNo"] == order) &&
					(acct == "" || c.Params["accountNo"] == acct)
			})))
			return 1
		},
		// balance(accountNo) -> fen
		"balance": func(L *lua.LState) int {
			b, _ := vcc.Balance(L.CheckString(1))
			L.Push(lua.LNumber(b))
			return 1
		},
		// withdrawal(orderNo) -> {status, amount (fen), remark, withdrawNo} or nil
		"withdrawal": func(L *lua.LState) int {
			w, ok := vcc.Withdrawal(L.CheckString(1))
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
		},
		"fail_next": func(L *lua.LState) int {
			vcc.Faults.FailNext(L.CheckInt(1), L.OptInt(2, http.StatusInternalServerError))
			return 0
		},
		"reject_auth_next": func(L *lua.LState) int {
			vcc.Faults.RejectAuthNext(L.CheckInt(1))
			return 0
		},
		"reset": func(L *lua.LState) int {
			vcc.Faults.FailNext(0, 0)
			vcc.Faults.RejectAuthNext(0)
			return 0
		},
	})
	runTemplateLuaTests(t, "vcc-gas-topup", map[string]runtime.HostModule{"fake": fake}, luatest.Config{
		RootCAs: vcc.CACertPEM(),
		Settings: map[string]string{
			"vcc.base_url":   vcc.BaseURL(),
			"vcc.api_key":    apiKey,
			"vcc.backoff":    "0.01",
			"vcc.machine_id": "M-九龙-01",
		},
		SecretKeys: []string{"vcc.api_key"},
	})
}
