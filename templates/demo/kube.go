// Package demo is a small provider backend for the bundled Container
// Service template: it stands in for a k8s provisioning API so the whole
// user journey works out of the box (vmarket serve mounts it under
// /demo/kube when --demo-provider is on) and in tests, where it counts
// every effect by idempotency key.
package demo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Namespace is one provisioned namespace.
type Namespace struct {
	OrderID      string    `json:"orderId"`
	Owner        string    `json:"owner"`
	Namespace    string    `json:"namespace"`
	Token        string    `json:"token"`
	Endpoint     string    `json:"endpoint"`
	ResourceUnit string    `json:"resourceUnit"`
	Region       string    `json:"region"`
	Hours        int       `json:"hours"`
	Created      time.Time `json:"created"`
	Deleted      bool      `json:"deleted"`
}

// Kube is the demo k8s backend. It is safe for concurrent use.
type Kube struct {
	// VerifyToken, when set, checks the bearer token of secret API calls
	// and returns the order it names.
	VerifyToken func(token string) (order string, err error)

	mu      sync.Mutex
	byKey   map[string]*Namespace // idempotency key → namespace created
	byOrder map[string]*Namespace
	creates map[string]int // effects by idempotency key
	deletes map[string]int
	calls   int
}

// NewKube returns an empty backend.
func NewKube() *Kube {
	return &Kube{byKey: map[string]*Namespace{}, byOrder: map[string]*Namespace{}, creates: map[string]int{}, deletes: map[string]int{}}
}

// Creates reports how many namespaces were really created for a key
// (repeats with the same key are not effects).
func (k *Kube) Creates(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.creates[key]
}

// Deletes reports how many deletions took effect for a key.
func (k *Kube) Deletes(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.deletes[key]
}

// Calls counts all requests served.
func (k *Kube) Calls() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

// Namespace returns the namespace of an order, if any.
func (k *Kube) Namespace(order string) (Namespace, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ns, ok := k.byOrder[order]
	if !ok {
		return Namespace{}, false
	}
	return *ns, true
}

// ServeHTTP routes the demo API:
//
//	POST   /api/v1/k8s/namespace            create (idempotent on Idempotency-Key)
//	DELETE /api/v1/k8s/namespace/{order}    delete (idempotent)
//	GET    /api/v1/k8s/namespace/status     ?userServiceId=
//	GET    /api/v1/k8s/regions
//	GET    /api/v1/k8s/deploy, /api/v1/k8s/logs   secret: Bearer service token
func (k *Kube) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.calls++
	k.mu.Unlock()
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case r.Method == http.MethodPost && p == "/api/v1/k8s/namespace":
		k.create(w, r)
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/api/v1/k8s/namespace/"):
		k.delete(w, r, strings.TrimPrefix(p, "/api/v1/k8s/namespace/"))
	case r.Method == http.MethodGet && p == "/api/v1/k8s/namespace/status":
		k.status(w, r.URL.Query().Get("userServiceId"))
	case r.Method == http.MethodGet && p == "/api/v1/k8s/regions":
		writeJSON(w, http.StatusOK, map[string]any{"regions": []string{"Hong Kong", "Singapore"}})
	case p == "/api/v1/k8s/deploy" || p == "/api/v1/k8s/logs":
		k.secret(w, r, p)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no such demo API: " + r.Method + " " + p})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (k *Kube) create(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Idempotency-Key header is required"})
		return
	}
	var req struct {
		OrderID      string `json:"orderId"`
		Owner        string `json:"owner"`
		ResourceUnit string `json:"resourceUnit"`
		Region       string `json:"region"`
		Hours        int    `json:"hours"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.OrderID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "body must be JSON with orderId"})
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if ns, ok := k.byKey[key]; ok {
		writeJSON(w, http.StatusOK, ns)
		return
	}
	name := "vm-" + strings.ReplaceAll(req.OrderID, "-", "")[:12]
	ns := &Namespace{
		OrderID: req.OrderID, Owner: req.Owner, Namespace: name, Token: "kube-" + randomHex(16),
		Endpoint: fmt.Sprintf("https://%s.k8s.demo.invalid", name), ResourceUnit: req.ResourceUnit,
		Region: req.Region, Hours: req.Hours, Created: time.Now().UTC(),
	}
	k.byKey[key] = ns
	k.byOrder[req.OrderID] = ns
	k.creates[key]++
	writeJSON(w, http.StatusCreated, ns)
}

func (k *Kube) delete(w http.ResponseWriter, r *http.Request, order string) {
	key := r.Header.Get("Idempotency-Key")
	k.mu.Lock()
	defer k.mu.Unlock()
	ns, ok := k.byOrder[order]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no namespace for order " + order})
		return
	}
	if !ns.Deleted {
		ns.Deleted = true
		k.deletes[key]++
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "namespace": ns.Namespace})
}

func (k *Kube) status(w http.ResponseWriter, order string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ns, ok := k.byOrder[order]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no namespace for user service " + order})
		return
	}
	state := "Active"
	if ns.Deleted {
		state = "Terminated"
	}
	writeJSON(w, http.StatusOK, map[string]any{"namespace": ns.Namespace, "state": state, "region": ns.Region, "resourceUnit": ns.ResourceUnit})
}

func (k *Kube) secret(w http.ResponseWriter, r *http.Request, p string) {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || k.VerifyToken == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "a vmarket service token is required"})
		return
	}
	order, err := k.VerifyToken(token)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "bad service token: " + err.Error()})
		return
	}
	k.mu.Lock()
	ns, found := k.byOrder[order]
	k.mu.Unlock()
	if !found || ns.Deleted {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no running namespace for order " + order})
		return
	}
	if strings.HasSuffix(p, "/logs") {
		writeJSON(w, http.StatusOK, map[string]any{"namespace": ns.Namespace, "lines": []string{"pod started", "ready"}})
		return
	}
	image := r.URL.Query().Get("image")
	if image == "" {
		image = "nginx:latest"
	}
	writeJSON(w, http.StatusOK, map[string]any{"namespace": ns.Namespace, "deployed": image, "endpoint": ns.Endpoint})
}
