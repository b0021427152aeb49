package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/httpapi"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/storage/sqlite"
	"github.com/vmarket/vmarket/templates"
)

// serveConfig is everything `vmarket serve` is configured with.
type serveConfig struct {
	addr      string
	dataDir   string
	jwtSecret string
	logLevel  string
	logFormat string
	grace     time.Duration
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
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	return []byte(s), f.Close()
}

// app is a running vmarket's parts, built by newApp and shared by serve
// and tests of the binary's wiring.
type app struct {
	log     *slog.Logger
	db      *sqlite.DB
	catalog *market.Catalog
	api     *httpapi.Server
}

func newApp(ctx context.Context, cfg serveConfig, log *slog.Logger) (*app, error) {
	secret, err := operatorSecret(cfg.jwtSecret, cfg.dataDir, true)
	if err != nil {
		return nil, err
	}
	keys, err := opauth.NewKeyring(secret)
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(cfg.dataDir, "vmarket.db"), sqlite.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	catalog := market.NewCatalog(db, luascript.Compiler{})
	if err := applyBundled(ctx, catalog, log); err != nil {
		db.Close()
		return nil, err
	}
	api := httpapi.New(httpapi.Config{Catalog: catalog, Operators: keys, Logger: log})
	return &app{log: log, db: db, catalog: catalog, api: api}, nil
}

// applyBundled applies the templates shipped in the binary; each is applied
// once per content version, so restarts create nothing twice.
func applyBundled(ctx context.Context, catalog *market.Catalog, log *slog.Logger) error {
	bundles, err := templates.Bundled()
	if err != nil {
		return err
	}
	for _, b := range bundles {
		applied, err := catalog.ApplyBundledTemplate(ctx, b.Name, b.Hash, b.Template)
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
	defer a.db.Close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	log.Info("vmarket listening", "addr", ln.Addr().String(), "data_dir", cfg.dataDir, "database", a.db.Path())
	err = a.api.Serve(ctx, ln, cfg.grace)
	log.Info("vmarket stopped")
	return err
}
