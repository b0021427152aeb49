package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/httpapi"
	"github.com/vmarket/vmarket/market/lifecycle"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/paysource"
	"github.com/vmarket/vmarket/market/reconcile"
	"github.com/vmarket/vmarket/market/signature"
	"github.com/vmarket/vmarket/market/wallet"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/sftphost"
	"github.com/vmarket/vmarket/scripts"
	"github.com/vmarket/vmarket/storage/sqlite"
	"github.com/vmarket/vmarket/templates"
	"github.com/vmarket/vmarket/templates/demo"
)

// serveConfig is everything `vmarket serve` is configured with.
type serveConfig struct {
	addr         string
	dataDir      string
	jwtSecret    string
	logLevel     string
	logFormat    string
	grace        time.Duration
	network      string
	sigWindow    time.Duration
	mockPayments bool
	demoProvider bool
	publicURL    string
	allowHosts   []string
	scriptCAFile string
	scriptTime   time.Duration
	luaMin       int
	luaMax       int
	workers      int
	maxAttempts  int
	jobLease     time.Duration
	hour         time.Duration
	privateBack  bool
	// ops configures the operator extensions (operator_wiring.go).
	ops operatorConfig
	// pay configures the payment sources (paysource_wiring.go).
	pay paymentConfig
	// recon configures the daily VCC reconciliation (reconcile_wiring.go).
	recon reconcileConfig
}

func newServeCmd() *cobra.Command {
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the marketplace server",
		Long: `Run the vmarket server: the V Cloud Platform API on an embedded SQLite
database in the data directory. On first start it creates the database,
applies the bundled templates and, unless --jwt-secret is given, generates
the operator JWT secret and keeps it in the data directory.`,
		Example: `  vmarket serve
  vmarket serve --addr 127.0.0.1:9090 --data-dir /var/lib/vmarket
  VMARKET_LOG_FORMAT=json vmarket serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.addr, "addr", envString("VMARKET_ADDR", ":8080"), "listen address (env VMARKET_ADDR)")
	addDataDirFlag(cmd, &cfg.dataDir)
	f.StringVar(&cfg.jwtSecret, "jwt-secret", envString("VMARKET_JWT_SECRET", ""), "operator JWT signing secret, at least 16 bytes; generated and kept in the data directory when unset (env VMARKET_JWT_SECRET)")
	f.StringVar(&cfg.logLevel, "log-level", envString("VMARKET_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env VMARKET_LOG_LEVEL)")
	f.StringVar(&cfg.logFormat, "log-format", envString("VMARKET_LOG_FORMAT", "text"), "log format: text or json (env VMARKET_LOG_FORMAT)")
	f.DurationVar(&cfg.grace, "shutdown-grace", 15*time.Second, "how long shutdown waits for requests in flight")
	f.StringVar(&cfg.network, "network", envString("VMARKET_NETWORK", "mainnet"), "VSYS network of wallet addresses: mainnet or testnet (env VMARKET_NETWORK)")
	f.DurationVar(&cfg.sigWindow, "signature-window", envDuration("VMARKET_SIGNATURE_WINDOW", 300*time.Second), "how far a request's x-sdk-time may be from the server clock (env VMARKET_SIGNATURE_WINDOW)")
	f.BoolVar(&cfg.mockPayments, "mock-payments", envBool("VMARKET_MOCK_PAYMENTS", true), "accept unauthenticated mock payments at POST /api/v1/order/mock; TURN OFF IN PRODUCTION (env VMARKET_MOCK_PAYMENTS)")
	f.BoolVar(&cfg.demoProvider, "demo-provider", envBool("VMARKET_DEMO_PROVIDER", true), "serve the bundled Container Service's demo k8s backend under /demo/kube; turn off in production (env VMARKET_DEMO_PROVIDER)")
	f.StringVar(&cfg.publicURL, "public-url", envString("VMARKET_PUBLIC_URL", ""), "URL clients reach this server at; bundled templates use it as their provider apiHost (default http://127.0.0.1:PORT) (env VMARKET_PUBLIC_URL)")
	f.StringSliceVar(&cfg.allowHosts, "script-allow-hosts", envList("VMARKET_SCRIPT_ALLOW_HOSTS"), "hosts every script may call over HTTP, besides its service type's apiHost (env VMARKET_SCRIPT_ALLOW_HOSTS, comma-separated)")
	f.StringVar(&cfg.scriptCAFile, "script-ca-file", envString("VMARKET_SCRIPT_CA_FILE", ""), "PEM file of extra CA certificates scripts trust for TLS (env VMARKET_SCRIPT_CA_FILE)")
	f.DurationVar(&cfg.scriptTime, "script-timeout", envDuration("VMARKET_SCRIPT_TIMEOUT", 5*time.Second), "wall-clock limit of one script run (env VMARKET_SCRIPT_TIMEOUT)")
	f.IntVar(&cfg.luaMin, "lua-min-states", envInt("VMARKET_LUA_MIN_STATES", 2), "Lua states created at start (env VMARKET_LUA_MIN_STATES)")
	f.IntVar(&cfg.luaMax, "lua-max-states", envInt("VMARKET_LUA_MAX_STATES", 16), "most Lua states alive at once (env VMARKET_LUA_MAX_STATES)")
	f.IntVar(&cfg.workers, "workers", envInt("VMARKET_WORKERS", 8), "lifecycle jobs run at once (env VMARKET_WORKERS)")
	f.IntVar(&cfg.maxAttempts, "job-attempts", envInt("VMARKET_JOB_ATTEMPTS", 5), "tries of a lifecycle job before its order is parked (env VMARKET_JOB_ATTEMPTS)")
	f.DurationVar(&cfg.jobLease, "job-lease", envDuration("VMARKET_JOB_LEASE", 60*time.Second), "how long a worker holds a job before another may take it over after a crash; at least 2× --script-timeout (env VMARKET_JOB_LEASE)")
	f.BoolVar(&cfg.privateBack, "allow-private-backends", envBool("VMARKET_ALLOW_PRIVATE_BACKENDS", true), "let user API calls reach providers on loopback and private addresses; turn off in production (env VMARKET_ALLOW_PRIVATE_BACKENDS)")
	f.DurationVar(&cfg.hour, "hour-length", envDuration("VMARKET_HOUR_LENGTH", time.Hour), "length of a billed hour; shorten only for demos and tests (env VMARKET_HOUR_LENGTH)")
	addOperatorFlags(cmd, &cfg.ops)
	addPaymentFlags(cmd, &cfg.pay)
	addReconcileFlags(cmd, &cfg.recon)
	return cmd
}

// addDataDirFlag adds --data-dir.
func addDataDirFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVar(target, "data-dir", envString("VMARKET_DATA_DIR", "./vmarket-data"), "data directory (env VMARKET_DATA_DIR)")
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

// jwtSecretFile is the file in the data directory holding the generated
// operator JWT secret.
const jwtSecretFile = "jwt-secret"

// operatorSecret returns the JWT secret: the flag value when set, else the
// one kept in the data directory, generated there when create is true.
func operatorSecret(flagValue, dataDir string, create bool) ([]byte, error) {
	if flagValue != "" {
		if len(flagValue) < opauth.MinSecretLen {
			return nil, fmt.Errorf("--jwt-secret must be at least %d bytes", opauth.MinSecretLen)
		}
		return []byte(flagValue), nil
	}
	path := filepath.Join(dataDir, jwtSecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < opauth.MinSecretLen {
			return nil, fmt.Errorf("%s holds a secret shorter than %d bytes", path, opauth.MinSecretLen)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) || !create {
		return nil, fmt.Errorf("read JWT secret: %w (pass --jwt-secret or --data-dir of a server that has run)", err)
	}
	s, err := opauth.NewSecret()
	if err != nil {
		return nil, err
	}
	if err := writeSecretFile(path, s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// app is a running vmarket's parts, built by newApp.
type app struct {
	dataDir string
	log     *slog.Logger
	db      *sqlite.DB
	engine  *runtime.Engine
	catalog *market.Catalog
	orders  *market.Orders
	worker  *lifecycle.Worker
	api     *httpapi.Server
	ops     *operatorParts
	// poller polls the enabled payment sources (nil when none is).
	poller *paysource.Poller
	// reconciler reconciles VCC gas top-ups; schedule is its daily run
	// (nil when off).
	reconciler *reconcile.Service
	schedule   *reconcile.Schedule
}

// close releases the app's resources.
func (a *app) close() {
	if a.ops != nil {
		a.ops.close()
	}
	a.engine.Close()
	a.db.Close()
}

// serviceKeyFile is the file in the data directory holding the Ed25519 seed
// that signs service tokens for providers' secret APIs.
const serviceKeyFile = "service-token.key"

// serviceSigner loads or creates the service token key.
func serviceSigner(dataDir string) (*opauth.ServiceSigner, error) {
	path := filepath.Join(dataDir, serviceKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		seed, err := opauth.NewServiceSeed()
		if err != nil {
			return nil, err
		}
		if err := writeSecretFile(path, hex.EncodeToString(seed)); err != nil {
			return nil, err
		}
		return opauth.NewServiceSigner(seed)
	}
	if err != nil {
		return nil, fmt.Errorf("read service key: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return opauth.NewServiceSigner(seed)
}

// writeSecretFile creates path with mode 0600; it never overwrites.
func writeSecretFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(content + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func newApp(ctx context.Context, cfg serveConfig, log *slog.Logger) (*app, error) {
	network, err := wallet.ParseNetwork(cfg.network)
	if err != nil {
		return nil, fmt.Errorf("--network: %w", err)
	}
	schedule, err := cfg.recon.schedule()
	if err != nil {
		return nil, err
	}
	secret, err := operatorSecret(cfg.jwtSecret, cfg.dataDir, true)
	if err != nil {
		return nil, err
	}
	keys, err := opauth.NewKeyring(secret)
	if err != nil {
		return nil, err
	}
	tokens, err := serviceSigner(cfg.dataDir)
	if err != nil {
		return nil, err
	}
	var rootCAs []byte
	if cfg.scriptCAFile != "" {
		if rootCAs, err = os.ReadFile(cfg.scriptCAFile); err != nil {
			return nil, fmt.Errorf("--script-ca-file: %w", err)
		}
	}
	verifier, err := signature.NewVerifier(signature.Config{
		Network: network, Window: cfg.sigWindow, Logger: log, MaxBodyBytes: httpapi.DefaultMaxTemplateBody,
	})
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(cfg.dataDir, "vmarket.db"), sqlite.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	limits := runtime.DefaultLimits()
	limits.Timeout = cfg.scriptTime
	engine, err := runtime.NewEngine(runtime.Options{
		MinStates: cfg.luaMin, MaxStates: max(cfg.luaMin, cfg.luaMax), Limits: limits,
		Resolver: runtime.FSResolver(scripts.FS()), KV: db.KV(), Logger: log,
		Modules: map[string]runtime.HostModule{"sftp": sftphost.New(sftphost.Options{Logger: log})},
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	a := &app{dataDir: cfg.dataDir, log: log, db: db, engine: engine, schedule: schedule}
	if a.ops, err = newOperatorParts(ctx, cfg.ops, cfg.dataDir, db, engine, runtime.FSResolver(scripts.FS()), keys, cfg.allowHosts, rootCAs, log); err != nil {
		a.close()
		return nil, err
	}
	ops := a.ops.ops
	validAddress := func(s string) error { return wallet.ValidateAddress(s, network) }
	a.catalog = market.NewCatalog(db, luascript.Compiler{}, market.WithAddressValidator(validAddress), market.WithCatalogHooks(ops))
	if err := applyBundled(ctx, a.catalog, publicURL(cfg), log); err != nil {
		a.close()
		return nil, err
	}
	a.worker = lifecycle.New(lifecycle.Config{
		Store: db, Hooks: ops, Runner: &luascript.Runner{Engine: engine, RootCAs: rootCAs, Logger: log,
			Settings: ops, Modules: ops.RunResolver, Recorder: ops},
		Seal: wallet.SealSecret, ExtraHosts: cfg.allowHosts, Logger: log,
		Concurrency: cfg.workers, MaxAttempts: cfg.maxAttempts,
		Lease: max(cfg.jobLease, 2*cfg.scriptTime), Hour: cfg.hour,
	})
	a.orders = market.NewOrders(db, market.WithWake(a.worker.Wake), market.WithHooks(ops), market.WithPublicKeyValidator(func(k string) error {
		_, err := wallet.ParsePublicKey(k)
		return err
	}))
	if a.reconciler, err = newReconciler(engine, db, ops, cfg.allowHosts, rootCAs, log); err != nil {
		a.close()
		return nil, err
	}
	a.api = httpapi.New(httpapi.Config{
		Catalog: a.catalog, Orders: a.orders, Operators: ops, Operator: ops, Reconcile: a.reconciler, ServiceTokens: tokens,
		Signatures: verifier.Middleware(signature.Optional), SignedAddress: signature.AddressFrom,
		MockPayments: cfg.mockPayments, DenyPrivateBackends: !cfg.privateBack, Logger: log,
		Metrics: a.ops.observer(cfg.ops.metrics), MetricsHandler: a.ops.handler(cfg.ops.metrics),
	})
	if cfg.demoProvider {
		kube := demo.NewKube()
		kube.VerifyToken = func(tok string) (string, error) {
			c, err := opauth.VerifyService(tok, tokens.PublicKey(), "v-kube-service", time.Now())
			if err != nil {
				return "", err
			}
			return c.Order, nil
		}
		a.api.Echo().Any("/demo/kube/*", echo.WrapHandler(http.StripPrefix("/demo/kube", kube)))
	}
	if err := mountVCPMonitor(a.api.Echo(), engine, db, ops, tokens.PublicKey, cfg.allowHosts, rootCAs, cfg.scriptTime, log); err != nil {
		a.close()
		return nil, err
	}
	if a.poller, err = newPoller(cfg.pay, engine, a.orders, db, ops, cfg.allowHosts, rootCAs, log); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// publicURL is the server's public URL: the flag, or loopback on the
// listen port.
func publicURL(cfg serveConfig) string {
	if cfg.publicURL != "" {
		return strings.TrimRight(cfg.publicURL, "/")
	}
	_, port, err := net.SplitHostPort(cfg.addr)
	if err != nil || port == "" || port == "0" {
		port = "8080"
	}
	return "http://127.0.0.1:" + port
}

// applyBundled applies the templates shipped in the binary; each is applied
// once per content version (and public URL), so restarts create nothing
// twice.
func applyBundled(ctx context.Context, catalog *market.Catalog, publicURL string, log *slog.Logger) error {
	bundles, err := templates.Bundled()
	if err != nil {
		return err
	}
	for _, b := range bundles {
		templates.Expand(b.Template, publicURL)
		sum := sha256.Sum256([]byte(b.Hash + "\n" + publicURL))
		applied, err := catalog.ApplyBundledTemplate(ctx, b.Name, hex.EncodeToString(sum[:]), b.Template)
		if err != nil {
			return err
		}
		if applied {
			log.Info("applied bundled template", "template", b.Name, "provider", b.Template.Provider.Name)
		}
	}
	return nil
}

func runServe(ctx context.Context, cfg serveConfig) error {
	log, err := newLogger(cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	if cfg.mockPayments {
		log.Warn("MOCK PAYMENTS ARE ON: anyone can mark orders paid via POST /api/v1/order/mock. Turn off in production: --mock-payments=false")
	}
	if cfg.demoProvider {
		log.Warn("demo provider backend is on under /demo/kube; turn off in production: --demo-provider=false")
	}
	workerDone := make(chan error, 1)
	wctx, stopWorker := context.WithCancel(context.Background())
	go func() { workerDone <- a.worker.Run(wctx) }()
	pollerDone := make(chan error, 1)
	if a.poller != nil {
		go func() { pollerDone <- a.poller.Run(wctx) }()
	} else {
		pollerDone <- nil
	}
	scheduleDone := make(chan error, 1)
	if a.schedule != nil {
		go func() { scheduleDone <- a.reconciler.RunDaily(wctx, *a.schedule) }()
	} else {
		scheduleDone <- nil
	}
	log.Info("vmarket listening", "addr", ln.Addr().String(), "public_url", publicURL(cfg), "network", cfg.network, "data_dir", cfg.dataDir, "database", a.db.Path())
	err = a.api.Serve(ctx, ln, cfg.grace)
	stopWorker()
	<-workerDone
	<-pollerDone
	<-scheduleDone
	log.Info("vmarket stopped")
	return err
}
