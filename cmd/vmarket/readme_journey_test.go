package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeJourney runs the README's user journey with the vmarket CLI
// itself (keygen, call, secret) against a full server: browse, buy,
// mock-pay, see the running service, read the secret, call its API,
// refund.
func TestReadmeJourney(t *testing.T) {
	base, _ := startApp(t, nil)
	me := filepath.Join(t.TempDir(), "me.json")
	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, "", append(args, "--server", base)...)
		if err != nil {
			t.Fatalf("vmarket %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	field := func(out, key string) string {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("not JSON: %s", out)
		}
		v, _ := m[key].(string)
		return v
	}

	out, err := runCLI(t, "", "keygen", "--out", me)
	if err != nil {
		t.Fatal(err)
	}
	pub := regexp.MustCompile(`public key:\s+(\S+)`).FindStringSubmatch(out)[1]

	types := run("call", "GET", "/api/v1/service/type?provider=v-kube-service", "--unsigned", "--wallet", me)
	typeID := regexp.MustCompile(`"id":\s*"([0-9a-f-]{36})"`).FindStringSubmatch(types)[1]

	order := run("call", "POST", "/api/v1/order/add", "--wallet", me, "--data",
		`{"serviceID":"`+typeID+`","serviceOptions":{"resourceUnit":"1-CPU-2G-Mem-5G-Storage","region":"Hong Kong"},"duration":2,"amount":2}`)
	id, recipient := field(order, "id"), field(order, "recipient")

	run("call", "POST", "/api/v1/order/mock", "--unsigned", "--wallet", me, "--data",
		`{"orderId":"`+id+`","providerAddr":"`+recipient+`","pubKey":"`+pub+`","amt":200000000}`)

	deadline := time.Now().Add(15 * time.Second)
	for field(run("call", "GET", "/api/v1/order/id/"+id, "--wallet", me), "status") != "OrderFiled" {
		if time.Now().After(deadline) {
			t.Fatal("order never filed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	secret := run("secret", id, "--wallet", me)
	if !strings.Contains(secret, "secret: kube-") {
		t.Fatalf("secret: %s", secret)
	}
	if field(run("call", "GET", "/api/v1/service/userAPI/get/normal/status/"+id, "--wallet", me), "state") != "Active" {
		t.Fatal("status API")
	}
	if field(run("call", "POST", "/api/v1/order/userRefund/"+id, "--wallet", me), "status") != "OrderRefund" {
		t.Fatal("refund")
	}
}
