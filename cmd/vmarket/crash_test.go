package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/wallet"
	"github.com/vmarket/vmarket/templates"
	"github.com/vmarket/vmarket/templates/demo"
)

// gate holds create requests to the backend while closed, so a test can
// kill vmarket while a start script waits on its HTTP call.
type gate struct {
	mu      sync.Mutex
	closed  bool
	arrived chan struct{}
	open    chan struct{}
}

func newGate() *gate { return &gate{arrived: make(chan struct{}, 16), open: make(chan struct{})} }

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		closed, open := g.closed, g.open
		g.mu.Unlock()
		if closed && r.Method == http.MethodPost {
			g.arrived <- struct{}{}
			<-open
		}
		next.ServeHTTP(w, r)
	})
}

// close makes create requests wait until release.
func (g *gate) close() {
	for len(g.arrived) > 0 {
		<-g.arrived
	}
	g.mu.Lock()
	g.closed, g.open = true, make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	g.closed = false
	close(g.open)
	g.mu.Unlock()
}

// child is a vmarket serve process.
type child struct {
	t    *testing.T
	bin  string
	args []string
	cmd  *exec.Cmd
	base string
}

func (c *child) start() {
	c.t.Helper()
	c.cmd = exec.Command(c.bin, c.args...)
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(c.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("vmarket did not come up")
}

// kill SIGKILLs the process: no shutdown code runs.
func (c *child) kill() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// TestCrashSafety runs vmarket as a child process and SIGKILLs it after a
// payment, inside a start script and before a stop. After each restart the
// order reaches the right final state, the backend saw each effect once,
// and the ledger balances.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "vmarket")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}

	kube := demo.NewKube()
	g := newGate()
	backend := httptest.NewServer(g.wrap(kube))
	defer backend.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	secret := "crash-test-secret-0123456789"
	vm := &child{t: t, bin: bin, base: base, args: []string{"serve", "--addr", addr, "--data-dir", t.TempDir(),
		"--jwt-secret", secret, "--demo-provider=false", "--public-url", base, "--job-lease", "2s",
		"--script-timeout", "1s", "--hour-length", "3s", "--log-level", "warn"}}
	vm.start()
	defer func() {
		if vm.cmd.ProcessState == nil {
			vm.kill()
		}
	}()

	// A provider whose type runs the Container Service scripts against the
	// backend above.
	keys, _ := opauth.NewKeyring([]byte(secret))
	tok, _ := keys.Issue("test", market.RoleAdmin, time.Hour, time.Now())
	bundles, err := templates.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := bundles[0].Template
	tmpl.Provider.Name = "crashco"
	templates.Expand(tmpl, base)
	tmpl.Categories[0].ServiceTypes[0].APIHost = backend.URL
	op, _ := client.New(base, client.Options{Token: tok})
	ctx := context.Background()
	body, _, err := op.Do(ctx, "POST", "/api/v1/template/add", nil, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var res market.TemplateResult
	json.Unmarshal(body, &res)
	typeID := res.ServiceTypes[0].ID

	w, _ := wallet.Generate(wallet.Mainnet)
	user, _ := client.New(base, client.Options{Wallet: w})
	anon, _ := client.New(base, client.Options{})
	buy := func(hours int) market.OrderJSON {
		t.Helper()
		var o market.OrderJSON
		b, _, err := user.Do(ctx, "POST", "/api/v1/order/add", nil, map[string]any{
			"serviceID": typeID, "serviceOptions": map[string]string{"resourceUnit": "1-CPU-2G-Mem-5G-Storage"},
			"duration": hours, "amount": hours,
		})
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(b, &o)
		if _, _, err := anon.Do(ctx, "POST", "/api/v1/order/mock", nil, map[string]any{
			"orderId": o.ID, "providerAddr": o.Recipient, "pubKey": w.PublicKey().String(), "amt": hours * 100000000,
		}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	get := func(id string) market.OrderJSON {
		t.Helper()
		var o market.OrderJSON
		b, _, err := user.Do(ctx, "GET", "/api/v1/order/id/"+id, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(b, &o)
		return o
	}
	waitFor := func(id string, want market.OrderStatus) market.OrderJSON {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for {
			o := get(id)
			if o.Status == want {
				return o
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s is %s/%s (last error %q), want %s", id, o.Status, o.ServiceStatus, o.LastError, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	balanced := func(id string) {
		t.Helper()
		b, _, err := user.Do(ctx, "GET", "/api/v1/order/id/"+id+"/payments", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ps []market.Payment
		json.Unmarshal(b, &ps)
		var credit, refund market.Decimal
		for _, p := range ps {
			if p.Kind == market.PaymentCredit {
				credit += p.Amount
			} else {
				refund += p.Amount
			}
		}
		o := get(id)
		if credit != o.AmountPaid || (o.AmountRefunded != nil && refund != *o.AmountRefunded) {
			t.Fatalf("ledger of %s: credits %s refunds %s, order paid %s refunded %v", id, credit, refund, o.AmountPaid, o.AmountRefunded)
		}
	}

	t.Run("after payment", func(t *testing.T) {
		// The gate keeps the start from finishing before the kill, wherever
		// the worker is when the process dies.
		g.close()
		o := buy(50)
		vm.kill()
		g.release()
		vm.start()
		waitFor(o.ID, market.OrderFiled)
		if n := kube.Creates(o.ID + ":start"); n != 1 {
			t.Fatalf("backend saw %d creates", n)
		}
		balanced(o.ID)
	})

	t.Run("inside start script", func(t *testing.T) {
		g.close()
		o := buy(50)
		select {
		case <-g.arrived:
		case <-time.After(20 * time.Second):
			t.Fatal("start script never called the backend")
		}
		vm.kill()
		g.release() // the backend finishes the create nobody waits for
		vm.start()
		waitFor(o.ID, market.OrderFiled)
		if n := kube.Creates(o.ID + ":start"); n != 1 {
			t.Fatalf("backend saw %d creates", n)
		}
		balanced(o.ID)
	})

	t.Run("before stop", func(t *testing.T) {
		o := buy(1) // one 3-second hour
		filed := waitFor(o.ID, market.OrderFiled)
		vm.kill()
		time.Sleep(time.Until(time.Unix(filed.EndAt+1, 0)))
		vm.start()
		done := waitFor(o.ID, market.OrderComplete)
		if done.ServiceStatus != market.ServiceDone {
			t.Fatalf("service %s", done.ServiceStatus)
		}
		if n := kube.Deletes(o.ID + ":stop"); n != 1 {
			t.Fatalf("backend saw %d deletes", n)
		}
		balanced(o.ID)
	})

	// Every order of the run, listed by its buyer, is in a final state.
	lister, _ := client.New(base, client.Options{Wallet: w, Unsigned: true})
	b, _, err := lister.Do(ctx, "GET", "/api/v1/order", url.Values{"pageSize": {"100"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		List []market.OrderJSON `json:"list"`
	}
	json.Unmarshal(b, &list)
	for _, o := range list.List {
		if o.Status == market.OrderPending || o.Status == market.OrderPaid {
			t.Errorf("order %s left in %s", o.ID, o.Status)
		}
	}
	fmt.Fprintln(os.Stderr, "crash test: orders", len(list.List))
}
