package paysource

import (
	_ "embed"
	"net/url"
	"strings"
)

// Kassa24Name is the Kassa24 source's name: the ledger source of its
// payments and the prefix of its settings.
const Kassa24Name = "kassa24"

// Kassa24 hosts, as the kassa24 Lua module defines them.
const (
	Kassa24SandboxURL    = "https://api.portal.tech24.kz/"
	Kassa24ProductionURL = "https://api.portal.kassa24.kz/"
)

//go:embed kassa24.lua
var kassa24Script string

// Kassa24 is the Kassa24 payment terminal source: its script reads the
// portal's payments report (kassa24 Lua module) and reports the
// successful payments whose account is an order id. The script may call
// the host of kassa24.base_url, or of the kassa24.env host (sandbox by
// default).
func Kassa24() Source {
	return Source{Name: Kassa24Name, Script: kassa24Script, Hosts: kassa24Hosts}
}

// kassa24Hosts is the host the settings point the kassa24 module at.
func kassa24Hosts(settings map[string]string) []string {
	base := strings.TrimSpace(settings["kassa24.base_url"])
	if base == "" {
		base = Kassa24SandboxURL
		if strings.TrimSpace(settings["kassa24.env"]) == "production" {
			base = Kassa24ProductionURL
		}
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil
	}
	return []string{u.Host}
}

// Named returns the bundled source of a name: "kassa24".
func Named(name string) (Source, bool) {
	switch name {
	case Kassa24Name:
		return Kassa24(), true
	}
	return Source{}, false
}
