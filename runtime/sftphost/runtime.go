package sftphost

import (
	"context"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime"
)

// Open implements runtime.HostModule, so a Module registers with the
// engine as is:
//
//	eng, err := runtime.NewEngine(runtime.Options{
//		Modules: map[string]runtime.HostModule{"sftp": sftphost.New(sftphost.Options{})},
//	})
//
// A run may reach the hosts of its RunOptions.AllowedHosts (the same list
// the http module uses) and those of Options.AllowedHosts. Errors are the
// runtime's host-module error tables, {code, message}, printed as
// "sftp: code: message".
func (m *Module) Open(L *lua.LState) *lua.LTable { return m.Table(L, runtimeEnv) }

var _ runtime.HostModule = (*Module)(nil)

// runEnv adapts the runtime's current run to Env.
type runEnv struct{ run *runtime.Run }

func runtimeEnv(L *lua.LState) Env {
	run := runtime.CurrentRun(L)
	if run == nil {
		L.RaiseError("sftp: not inside a run")
	}
	return runEnv{run: run}
}

func (e runEnv) Context() context.Context { return e.run.Context() }

func (e runEnv) RaiseError(L *lua.LState, code, message string) {
	e.run.RaiseError(L, "sftp", code, message)
}

func (e runEnv) HostAllowed(host string, port int) bool {
	return hostListAllows(e.run.Options().AllowedHosts, host, port)
}

func (e runEnv) Reserve(L *lua.LState, n int64) { e.run.Reserve(L, n) }
