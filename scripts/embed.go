// Package scripts holds vmarket's bundled Lua integration modules (vcc,
// vcp, kassa24), each in its own folder with its Lua tests and a Go
// loopback fake of the outside API it talks to. The modules are embedded
// in the binary; serve them to the runtime with
//
//	runtime.FSResolver(scripts.FS())
//
// (layered behind operator modules with runtime.Chain), and register the
// sftp host module (runtime/sftphost) for vcc's reconciliation.
package scripts

import (
	"embed"
	"io/fs"
)

// bundled is the embedded tree: <name>/<name>.lua and the Lua tests.
//
//go:embed */*.lua
var bundled embed.FS

// FS returns the bundled modules, laid out as <name>/<name>.lua (what
// runtime.FSResolver expects); the folders also hold the modules'
// *_test.lua files.
func FS() fs.FS { return bundled }

// Modules lists the names of the bundled modules, sorted.
func Modules() []string {
	entries, _ := fs.ReadDir(bundled, ".")
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := fs.Stat(bundled, e.Name()+"/"+e.Name()+".lua"); err == nil {
			names = append(names, e.Name())
		}
	}
	return names
}
