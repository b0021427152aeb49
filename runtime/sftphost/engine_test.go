package sftphost_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/sftphost"
)

func TestEngine(t *testing.T) {
	f := setup(t)
	eng, err := runtime.NewEngine(runtime.Options{
		Modules: map[string]runtime.HostModule{"sftp": sftphost.New(sftphost.Options{Logger: slog.New(slog.DiscardHandler)})},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	script := `
		local sftp = require("sftp")
		local settings = require("settings")
		local c = sftp.connect{host = input.host, port = input.port, user = "vcc",
			password = settings.get("sftp_password"), host_key_fingerprint = input.fp}
		local out = {names = {}}
		for _, e in ipairs(c:list("/reconcile")) do table.insert(out.names, e.name) end
		out.data = c:get("/reconcile/20250314.csv")
		local ok, err = pcall(c.get, c, "/missing")
		out.err = tostring(err)
		out.code = err.code
		return out`
	tests := []struct {
		name    string
		allowed []string
		wantErr string
	}{
		{"allowed by the run", []string{"127.0.0.1"}, ""},
		{"not allowed", []string{"example.com"}, "sftp: not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			res, err := eng.Run(ctx, runtime.Script{Name: "recon", Source: script},
				map[string]any{"host": f.srv.Host(), "port": f.srv.Port(), "fp": f.srv.Fingerprint()},
				runtime.RunOptions{
					AllowedHosts: tc.allowed,
					Settings:     map[string]string{"sftp_password": "pw-秘密"},
					SecretKeys:   []string{"sftp_password"},
				})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := res.Map()
			if fmt.Sprint(m["names"]) != "[20250314.csv 20250315.csv]" || m["data"] != "orderNo,amount\nA-1,10.00\n" ||
				m["code"] != "not_found" || !strings.HasPrefix(m["err"].(string), "sftp: not_found: ") {
				t.Fatalf("result %v", m)
			}
		})
	}
}

func TestEngineDeadline(t *testing.T) {
	f := setup(t)
	eng, err := runtime.NewEngine(runtime.Options{
		Modules: map[string]runtime.HostModule{"sftp": sftphost.New(sftphost.Options{Logger: slog.New(slog.DiscardHandler)})},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	f.srv.Faults.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = eng.Run(ctx, runtime.Script{Name: "slow", Source: fmt.Sprintf(`
		local sftp = require("sftp")
		local c = sftp.connect{host=%q, port=%d, user="vcc", password="pw-秘密", host_key=%q}
		return {data = c:get("/reconcile/20250314.csv")}`, f.srv.Host(), f.srv.Port(), f.srv.HostKeyLine())},
		nil, runtime.RunOptions{AllowedHosts: []string{"127.0.0.1"}, Timeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("err %v", err)
	}
}
