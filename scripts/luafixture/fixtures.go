package luafixture

import (
	"fmt"
	"time"

	"github.com/vmarket/vmarket/scripts/kassa24/kassa24fake"
	"github.com/vmarket/vmarket/scripts/sftpfake"
	"github.com/vmarket/vmarket/scripts/vcc/vccfake"
	"github.com/vmarket/vmarket/scripts/vcp/vcpfake"
)

// starter starts one fixture: its fakes, seeded, their settings, the
// "fake" control functions and any other host module its tests need.
type starter func(f *Fixture, ctl *control) error

// definitions are the known fixtures by name. Each Lua test file's header
// describes the data it expects; keep them in step.
func definitions() map[string]starter {
	return map[string]starter{
		"vcc":               startVCCModule,
		"vcp":               startVCPModule,
		"kassa24":           startKassa24Module,
		"vcc-gas-topup":     startVCCGasTopup,
		"vcp-site-monitor":  startVCPSiteMonitor,
		"kassa24-paysource": startKassa24PaySource,
	}
}

// startVCC starts a VCC fake and trusts its CA.
func (f *Fixture) startVCC(cfg vccfake.Config) *vccfake.Server {
	s := vccfake.New(cfg)
	f.onClose(s.Close)
	f.Fakes.VCC = s
	f.RootCAs = append(f.RootCAs, s.CACertPEM()...)
	f.Started = append(f.Started, Fake{Name: "vccfake", Addr: s.BaseURL(), Note: "HTTPS, its CA passed as a root CA"})
	return s
}

// startSFTP starts an SFTP fake.
func (f *Fixture) startSFTP(cfg sftpfake.Config) (*sftpfake.Server, error) {
	s, err := sftpfake.New(cfg)
	if err != nil {
		return nil, err
	}
	f.onClose(func() { s.Close() })
	f.Fakes.SFTP = s
	f.Started = append(f.Started, Fake{Name: "sftpfake", Addr: s.Addr(), Note: "host key " + s.Fingerprint()})
	return s, nil
}

// startVCP starts a VCP fake.
func (f *Fixture) startVCP(cfg vcpfake.Config) *vcpfake.Server {
	s := vcpfake.New(cfg)
	f.onClose(s.Close)
	f.Fakes.VCP = s
	f.Started = append(f.Started, Fake{Name: "vcpfake", Addr: s.URL()})
	return s
}

// startKassa24 starts a Kassa24 fake holding payments.
func (f *Fixture) startKassa24(cfg kassa24fake.Config, payments []kassa24fake.Payment) *kassa24fake.Server {
	s := kassa24fake.New(cfg)
	f.onClose(s.Close)
	f.Fakes.Kassa24 = s
	for _, p := range payments {
		s.AddPayment(p)
	}
	f.Started = append(f.Started, Fake{Name: "kassa24fake", Addr: s.URL()})
	return s
}

// setSecret sets a setting and marks it secret.
func (f *Fixture) setSecret(key, value string) {
	f.Settings[key] = value
	f.SecretKeys = append(f.SecretKeys, key)
}

// startVCCModule is the fixture of scripts/vcc: the VCC fake (HTTPS) with
// three accounts (880001 normal, 1 000 000 fen, Chinese name and address;
// 880002 frozen; 880003 1000 fen) and an SFTP fake for the daily
// reconciliation (user vmarket, host key pinned by fingerprint and line).
func startVCCModule(f *Fixture, ctl *control) error {
	vcc := f.startVCC(vccfake.Config{
		APIKey: "vcc-test-key",
		Accounts: []vccfake.Account{
			{AccountNo: "880001", CustomerName: "陈大文", Address: "香港九龙旺角弥敦道88号12楼B室", MeterNo: "M-01", CardNo: "C-01", Balance: 1_000_000},
			{AccountNo: "880002", CustomerName: "李小龙", Address: "深圳市南山区", Balance: 100, Status: "FROZEN"},
			{AccountNo: "880003", CustomerName: "黄飞鸿", Address: "佛山市禅城区", Balance: 1000},
		},
	})
	sftp, err := f.startSFTP(sftpfake.Config{Users: []sftpfake.User{{Name: "vmarket", Password: "sftp-pw"}}})
	if err != nil {
		return err
	}
	f.Settings["vcc.base_url"] = vcc.BaseURL()
	f.setSecret("vcc.api_key", "vcc-test-key")
	f.Settings["vcc.backoff"] = "0.01"
	f.Settings["vcc.sftp.host"] = sftp.Host()
	f.Settings["vcc.sftp.port"] = fmt.Sprint(sftp.Port())
	f.Settings["vcc.sftp.user"] = "vmarket"
	f.setSecret("vcc.sftp.password", "sftp-pw")
	f.Settings["vcc.sftp.host_key_fingerprint"] = sftp.Fingerprint()
	f.Settings["vcc.sftp.host_key"] = sftp.HostKeyLine()
	ctl.addVCC(vcc)
	ctl.addReconciliation(vcc, sftp)
	return nil
}

// startVCCGasTopup is the fixture of templates/vcc-gas-topup: the VCC fake
// (HTTPS) with four accounts (880001 10 000 000 fen; 880002 frozen; 880003
// 1000 fen; 880004 1 000 000 fen) and the machine id M-九龙-01.
func startVCCGasTopup(f *Fixture, ctl *control) error {
	vcc := f.startVCC(vccfake.Config{
		APIKey: "vcc-topup-key",
		Accounts: []vccfake.Account{
			{AccountNo: "880001", CustomerName: "陈大文", Address: "香港九龙旺角弥敦道88号", CardNo: "C-01", Balance: 10_000_000},
			{AccountNo: "880002", CustomerName: "李小龙", Balance: 100_000, Status: "FROZEN"},
			{AccountNo: "880003", CustomerName: "黄飞鸿", Balance: 1000},
			{AccountNo: "880004", CustomerName: "李明", Balance: 1_000_000},
		},
	})
	f.Settings["vcc.base_url"] = vcc.BaseURL()
	f.setSecret("vcc.api_key", "vcc-topup-key")
	f.Settings["vcc.backoff"] = "0.01"
	f.Settings["vcc.machine_id"] = "M-九龙-01"
	ctl.addVCC(vcc)
	f.HostModules["template"] = templateModule(f.Dir)
	return nil
}

// VCP test site of the vcp and vcp-site-monitor fixtures.
const vcpSite = "3f2b8c1e-6a4d-4e2f-9b71-0c5d2a8e4f10"

func allVCPScopes() []string {
	return []string{vcpfake.ScopeCommands, vcpfake.ScopeConfig, vcpfake.ScopeTelemetry}
}

// startVCPSite starts a VCP fake with the given keys and one site in
// self-consumption mode (max export 50 kW) with three commands: one
// pending (a minute old), one applied 2 h ago, one applied 30 h ago.
func (f *Fixture) startVCPSite(keys map[string][]string) (*vcpfake.Server, error) {
	vcp := f.startVCP(vcpfake.Config{Keys: keys})
	vcp.AddSite(vcpSite, vcpfake.SiteConfig{OperatingMode: "self-consumption", Constraints: map[string]any{"maxExportKw": 50}})
	now := time.Now()
	applied, old := now.Add(-2*time.Hour), now.Add(-30*time.Hour)
	for _, c := range []vcpfake.Command{
		{ID: "c1", Type: "setMode", Status: "pending", CreatedAt: now.Add(-time.Minute)},
		{ID: "c2", Type: "setLimit", Status: "applied", CreatedAt: applied, AppliedAt: &applied},
		{ID: "c3", Type: "setLimit", Status: "applied", CreatedAt: old, AppliedAt: &old},
	} {
		if err := vcp.AddCommand(vcpSite, c); err != nil {
			return nil, err
		}
	}
	return vcp, nil
}

// startVCPModule is the fixture of scripts/vcp: the VCP site (see
// startVCPSite), the key vcp-test-key with every scope and config-only
// with the config scope.
func startVCPModule(f *Fixture, ctl *control) error {
	const key = "vcp-test-key"
	vcp, err := f.startVCPSite(map[string][]string{key: allVCPScopes(), "config-only": {vcpfake.ScopeConfig}})
	if err != nil {
		return err
	}
	f.Settings["vcp.base_url"] = vcp.URL()
	f.setSecret("vcp.api_key", key)
	f.Settings["vcp.backoff"] = "0.01"
	ctl.addVCP(vcp, key)
	return nil
}

// startVCPSiteMonitor is the fixture of templates/vcp-site-monitor: the
// VCP site (see startVCPSite) and the key vcp-monitor-key with every scope
// (fake.scopes changes them).
func startVCPSiteMonitor(f *Fixture, ctl *control) error {
	const key = "vcp-monitor-key"
	vcp, err := f.startVCPSite(map[string][]string{key: allVCPScopes()})
	if err != nil {
		return err
	}
	f.Settings["vcp.base_url"] = vcp.URL()
	f.setSecret("vcp.api_key", key)
	f.Settings["vcp.backoff"] = "0.01"
	ctl.addVCP(vcp, key)
	f.HostModules["template"] = templateModule(f.Dir)
	return nil
}

// kassa24Day is a time of January 2025 in Kassa24's zone (UTC+5).
func kassa24Day(d, h, m, s int) time.Time {
	return time.Date(2025, 1, d, h, m, s, 0, kassa24fake.Zone())
}

// startKassa24Module is the fixture of scripts/kassa24: 25 payments on
// 2025-01-02 from 10:00 (UTC+5), one a minute (T000…T024, terminals
// 100/101, accounts order-0…, amounts 1000·(i+1)+50 tiyn), plus edge
// payments at 2025-01-01 23:59:59, 2025-01-03 00:00:00 and 2025-01-02
// 23:59:59.
func startKassa24Module(f *Fixture, ctl *control) error {
	const token = "kassa24-test-token"
	var payments []kassa24fake.Payment
	for i := range 25 {
		payments = append(payments, kassa24fake.Payment{
			TransactionID: fmt.Sprintf("T%03d", i),
			TerminalID:    int64(100 + i%2),
			Amount:        int64(1000*(i+1) + 50),
			Date:          kassa24Day(2, 10, i, 0),
			Account:       fmt.Sprintf("order-%d", i),
		})
	}
	payments = append(payments,
		kassa24fake.Payment{TransactionID: "E1", TerminalID: 100, Amount: 1, Date: kassa24Day(1, 23, 59, 59), Account: "edge-before"},
		kassa24fake.Payment{TransactionID: "E2", TerminalID: 100, Amount: 1, Date: kassa24Day(3, 0, 0, 0), Account: "edge-after"},
		kassa24fake.Payment{TransactionID: "E3", TerminalID: 100, Amount: 1, Date: kassa24Day(2, 23, 59, 59), Account: "edge-end"},
	)
	k := f.startKassa24(kassa24fake.Config{Token: token}, payments)
	f.Settings["kassa24.base_url"] = k.URL()
	f.setSecret("kassa24.token", token)
	f.Settings["kassa24.backoff"] = "0.01"
	ctl.addKassa24(k)
	return nil
}

// startKassa24PaySource is the fixture of market/paysource (the Kassa24
// payment source script, which "source.script()" returns): payments of
// 2025-01-01/02 (UTC+5), pages of 2 rows:
//
//	T0 2025-01-01 08:00 order-old   500.00
//	T1 2025-01-02 09:00 order-a    1500.00
//	T2 2025-01-02 09:30 " ORDER-B " 250.50
//	T3 2025-01-02 09:45 order-x      99.00 cancelled
//	T5 2025-01-02 10:10 (no account) 10.00
//	T4 2025-01-02 10:30 order-c      10.00
//
// The payment source's Go tests seed their Poller from the same fake.
func startKassa24PaySource(f *Fixture, ctl *control) error {
	const token = "kassa24-paysource-token"
	k := f.startKassa24(kassa24fake.Config{Token: token}, []kassa24fake.Payment{
		{TransactionID: "T0", TerminalID: 7, Amount: 500_00, Date: kassa24Day(1, 8, 0, 0), Account: "order-old"},
		{TransactionID: "T1", TerminalID: 7, Amount: 1500_00, Date: kassa24Day(2, 9, 0, 0), Account: "order-a"},
		{TransactionID: "T2", TerminalID: 8, Amount: 250_50, Date: kassa24Day(2, 9, 30, 0), Account: " ORDER-B "},
		{TransactionID: "T3", TerminalID: 7, Amount: 99_00, Date: kassa24Day(2, 9, 45, 0), Account: "order-x", Status: "cancelled"},
		{TransactionID: "T5", TerminalID: 7, Amount: 10_00, Date: kassa24Day(2, 10, 10, 0), Account: ""},
		{TransactionID: "T4", TerminalID: 8, Amount: 10_00, Date: kassa24Day(2, 10, 30, 0), Account: "order-c"},
	})
	f.Settings["kassa24.base_url"] = k.URL()
	f.setSecret("kassa24.token", token)
	f.Settings["kassa24.page_size"] = "2"
	f.Settings["kassa24.backoff"] = "0.01"
	ctl.addKassa24(k)
	f.HostModules["source"] = sourceModule(f.Dir, "kassa24.lua")
	return nil
}
