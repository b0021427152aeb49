package scripts_test

import (
	"fmt"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/sftpfake"
	"github.com/vmarket/vmarket/scripts/vcc/vccfake"
)

func TestVCCLua(t *testing.T) {
	const apiKey = "vcc-test-key"
	vcc := vccfake.New(vccfake.Config{
		APIKey: apiKey,
		Accounts: []vccfake.Account{
			{AccountNo: "880001", CustomerName: "陈大文", Address: "香港九龙旺角弥敦道88号12楼B室", MeterNo: "M-01", CardNo: "C-01", Balance: 1_000_000},
			{AccountNo: "880002", CustomerName: "李小龙", Address: "深圳市南山区", Balance: 100, Status: "FROZEN"},
			{AccountNo: "880003", CustomerName: "黄飞鸿", Address: "佛山市禅城区", Balance: 1000},
		},
	})
	defer vcc.Close()
	sftp, err := sftpfake.New(sftpfake.Config{Users: []sftpfake.User{{Name: "vmarket", Password: "sftp-pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sftp.Close()

	ctl := &control{
		main: &vcc.Faults,
		sftp: &sftp.Faults,
		count: func(L *lua.LState, f *lua.LTable) int {
			res, order := str(f, "resource"), str(f, "orderNo")
			return vcc.Count(func(c vccfake.Call) bool {
				return (res == "" || c.Resource == res) && (order == "" || c.Params["orderNo"] == order)
			})
		},
		extras: map[string]lua.LGFunction{
			// balance(accountNo) -> fen
			"balance": func(L *lua.LState) int {
				b, _ := vcc.Balance(L.CheckString(1))
				L.Push(lua.LNumber(b))
				return 1
			},
			// put_reconciliation() -> path: today's file from the fake's withdrawals.
			"put_reconciliation": func(L *lua.LState) int {
				now := time.Now()
				p := vccfake.ReconciliationPath(now)
				sftp.PutFile(p, vcc.ReconciliationFile(now))
				L.Push(lua.LString(p))
				L.Push(lua.LString(now.In(vccfake.ChinaTime()).Format("20060102")))
				return 2
			},
			// put_file(path, text)
			"put_file": func(L *lua.LState) int {
				sftp.PutFile(L.CheckString(1), []byte(L.CheckString(2)))
				return 0
			},
			"remove_file": func(L *lua.LState) int {
				sftp.Remove(L.CheckString(1))
				return 0
			},
		},
	}
	runLuaTests(t, "vcc", ctl, luatest.Config{
		RootCAs: vcc.CACertPEM(),
		Settings: map[string]string{
			"vcc.base_url":                  vcc.BaseURL(),
			"vcc.api_key":                   apiKey,
			"vcc.backoff":                   "0.01",
			"vcc.sftp.host":                 sftp.Host(),
			"vcc.sftp.port":                 fmt.Sprint(sftp.Port()),
			"vcc.sftp.user":                 "vmarket",
			"vcc.sftp.password":             "sftp-pw",
			"vcc.sftp.host_key_fingerprint": sftp.Fingerprint(),
			"vcc.sftp.host_key":             sftp.HostKeyLine(),
		},
		SecretKeys: []string{"vcc.api_key", "vcc.sftp.password"},
	})
}
