package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market"
)

// scriptContext loads what a step's script needs: the type, its
// category, the provider and the pinned source (empty when the type has no
// such script).
type scriptContext struct {
	typ      *market.ServiceType
	category *market.Category
	provider *market.Provider
	source   string
}

func (w *Worker) load(ctx context.Context, o *market.Order, hash string) (*scriptContext, error) {
	t, err := w.cfg.Store.ServiceType(ctx, o.ServiceID)
	if err != nil {
		return nil, err
	}
	sc := &scriptContext{typ: t}
	if hash == "" {
		return sc, nil
	}
	if sc.provider, err = w.cfg.Store.Provider(ctx, o.Provider); err != nil {
		return nil, err
	}
	if sc.category, err = w.cfg.Store.Category(ctx, t.CategoryID); err != nil {
		return nil, err
	}
	sc.source, err = w.source(ctx, hash)
	return sc, err
}

// source returns a script's source by hash. Sources are immutable, so
// they are cached (a bounded map, dropped whole when full).
func (w *Worker) source(ctx context.Context, hash string) (string, error) {
	w.srcMu.Lock()
	src, ok := w.sources[hash]
	w.srcMu.Unlock()
	if ok {
		return src, nil
	}
	src, err := w.cfg.Store.ScriptSource(ctx, hash)
	if err != nil {
		return "", err
	}
	w.srcMu.Lock()
	if len(w.sources) >= 1024 {
		clear(w.sources)
	}
	w.sources[hash] = src
	w.srcMu.Unlock()
	return src, nil
}

// serviceHost is where a type's scripts and user API calls go: the type's
// apiHost, else its category's backup host.
func (sc *scriptContext) serviceHost() string {
	if sc.typ.APIHost != "" {
		return market.HostURL(sc.typ.APIHost)
	}
	if sc.category != nil && sc.category.APIHost != "" {
		return market.HostURL(sc.category.APIHost)
	}
	return ""
}

// hostOf returns host[:port] of a base URL.
func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return u.Host
}

// run runs the step's script, if the type has one, and returns its result
// table (nil when there is no script).
func (w *Worker) run(ctx context.Context, j market.Job, step market.JobKind, hash string, o *market.Order, sc *scriptContext, key string) (map[string]any, error) {
	if sc.source == "" {
		return nil, nil
	}
	host := sc.serviceHost()
	allowed := append([]string{}, w.cfg.ExtraHosts...)
	if h := hostOf(host); h != "" {
		allowed = append(allowed, h)
	}
	if sc.category.APIHost != "" {
		if h := hostOf(market.HostURL(sc.category.APIHost)); h != "" {
			allowed = append(allowed, h)
		}
	}
	input, err := scriptInput(step, key, o, sc, host, w.cfg.Now(), w.hourSeconds())
	if err != nil {
		return nil, err
	}
	return w.cfg.Runner.RunScript(ctx, market.ScriptRun{
		Step: step, Hash: hash, Source: sc.source, Provider: o.Provider, OrderID: o.ID,
		AllowedHosts: allowed, Input: input,
	})
}

// scriptInput builds the input table of the script contract: step,
// idempotencyKey, now, order, service and provider.
func scriptInput(step market.JobKind, key string, o *market.Order, sc *scriptContext, host string, now time.Time, hour int64) (map[string]any, error) {
	order, err := toMap(o.Render(market.ViewProvider))
	if err != nil {
		return nil, err
	}
	pub := sc.typ.Public()
	service, err := toMap(pub)
	if err != nil {
		return nil, err
	}
	delete(service, "serviceAPI")
	service["apiHost"] = host
	service["normal"] = pub.ServiceAPI.Normal
	service["secret"] = pub.ServiceAPI.Secret
	provider := map[string]any{
		"id": sc.provider.ID, "name": sc.provider.Name,
		"walletAddress": sc.provider.WalletAddress, "apiHost": sc.provider.APIHost,
	}
	return map[string]any{
		"step": string(step), "idempotencyKey": key, "now": now.Unix(), "hourSeconds": hour,
		"order": order, "service": service, "provider": provider,
	}, nil
}

// toMap converts a JSON-tagged value to a map through its JSON form, so
// scripts see the API's field names.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// start runs the start script of a paid order and files it.
func (w *Worker) start(ctx context.Context, j market.Job, o *market.Order) error {
	if o.Status != market.OrderPaid || o.ServiceStatus != market.ServicePending {
		return w.finish(ctx, j, market.JobCancelled, "order is "+o.Status.String()+"/"+string(o.ServiceStatus), "", nil)
	}
	sc, err := w.load(ctx, o, o.StartHash)
	if err != nil {
		return err
	}
	res, err := w.run(ctx, j, market.JobStart, o.StartHash, o, sc, j.IdempotencyKey())
	if err != nil {
		return err
	}
	secret, data, err := startResult(res)
	if err != nil {
		return err
	}
	magic := ""
	if secret != "" {
		if o.PublicKey == "" {
			return fmt.Errorf("order has no public key to seal the secret to")
		}
		if magic, err = w.cfg.Seal([]byte(secret), o.PublicKey); err != nil {
			return fmt.Errorf("seal secret: %w", err)
		}
	}
	now := w.cfg.Now()
	return w.finish(ctx, j, market.JobDone, "", market.EventOrderFiled, func(tx market.Tx, cur *market.Order) error {
		if cur.Status != market.OrderPaid || cur.ServiceStatus != market.ServicePending {
			return market.Errorf(market.KindConflict, "order %s moved on while starting", cur.ID)
		}
		cur.Status, cur.FiledTS = market.OrderFiled, now.Unix()
		cur.ServiceStatus, cur.ServiceRunningTS = market.ServiceRunning, now.Unix()
		cur.ServiceActivated, cur.ServiceActivateTS = true, now.Unix()
		cur.EndAt = now.Unix() + cur.Duration*w.hourSeconds()
		cur.Magic, cur.UserService, cur.LastError = magic, data, ""
		return tx.EnqueueJob(ctx, &market.Job{OrderID: cur.ID, Kind: market.JobStop, RunAt: time.Unix(cur.EndAt, 0)})
	})
}

// startResult reads {secret = "...", data = {...}} from a start script.
func startResult(res map[string]any) (string, map[string]any, error) {
	if res == nil {
		return "", nil, nil
	}
	var secret string
	switch v := res["secret"].(type) {
	case nil:
	case string:
		secret = v
	case int64, float64:
		secret = fmt.Sprint(v)
	default:
		return "", nil, fmt.Errorf("start script: secret must be a string, not %T", v)
	}
	var data map[string]any
	switch v := res["data"].(type) {
	case nil:
	case map[string]any:
		data = v
	default:
		return "", nil, fmt.Errorf("start script: data must be a table of named fields, not %T", v)
	}
	return secret, data, nil
}

// stop runs the stop script at the end of the paid time and completes the
// order.
func (w *Worker) stop(ctx context.Context, j market.Job, o *market.Order) error {
	if o.ServiceStatus != market.ServiceRunning && o.ServiceStatus != market.ServiceStop {
		return w.finish(ctx, j, market.JobCancelled, "service is "+string(o.ServiceStatus), "", nil)
	}
	sc, err := w.load(ctx, o, o.StopHash)
	if err != nil {
		return err
	}
	if _, err := w.run(ctx, j, market.JobStop, o.StopHash, o, sc, j.IdempotencyKey()); err != nil {
		return err
	}
	now := w.cfg.Now()
	return w.finish(ctx, j, market.JobDone, "", market.EventOrderCompleted, func(tx market.Tx, cur *market.Order) error {
		if cur.ServiceStatus != market.ServiceRunning && cur.ServiceStatus != market.ServiceStop {
			return market.Errorf(market.KindConflict, "order %s moved on while stopping", cur.ID)
		}
		cur.ServiceStatus, cur.ServiceDoneTS, cur.ServiceActivated = market.ServiceDone, now.Unix(), false
		cur.Status, cur.CompleteTS, cur.LastError = market.OrderComplete, now.Unix(), ""
		return nil
	})
}

// refund stops a running service, asks the refund script for the amount
// (default: unused whole hours, prorated), and pays it back.
func (w *Worker) refund(ctx context.Context, j market.Job, o *market.Order) error {
	t, err := w.cfg.Store.ServiceType(ctx, o.ServiceID)
	if err != nil {
		return err
	}
	if !o.Refundable(t.Refundable) {
		return w.finish(ctx, j, market.JobCancelled, "order is no longer refundable", "", nil)
	}
	running := o.ServiceStatus == market.ServiceRunning
	if running {
		sc, err := w.load(ctx, o, o.StopHash)
		if err != nil {
			return err
		}
		// Same key as the regular stop: both have the same effect.
		stopKey := o.ID + ":" + string(market.JobStop)
		if _, err := w.run(ctx, j, market.JobStop, o.StopHash, o, sc, stopKey); err != nil {
			return fmt.Errorf("stop before refund: %w", err)
		}
	}
	now := w.cfg.Now()
	amount := defaultRefund(o, running, now, w.hourSeconds())
	sc, err := w.load(ctx, o, o.RefundHash)
	if err != nil {
		return err
	}
	res, err := w.run(ctx, j, market.JobRefund, o.RefundHash, o, sc, j.IdempotencyKey())
	if err != nil {
		return err
	}
	if res != nil {
		if v, ok := res["amount"]; ok && v != nil {
			if amount, err = decimalOf(v); err != nil {
				return fmt.Errorf("refund script: amount: %w", err)
			}
			if amount < 0 {
				return fmt.Errorf("refund script: amount must not be negative")
			}
		}
	}
	return w.finish(ctx, j, market.JobDone, "", market.EventOrderRefunded, func(tx market.Tx, cur *market.Order) error {
		if !cur.Refundable(true) {
			return market.Errorf(market.KindConflict, "order %s moved on while refunding", cur.ID)
		}
		cur.LastError = ""
		return w.applyRefund(ctx, tx, cur, amount, now)
	})
}

// decimalOf reads a script number (or numeric string) as a Decimal,
// rounded to 1e-8.
func decimalOf(v any) (market.Decimal, error) {
	switch n := v.(type) {
	case int64:
		d, ok := market.NewDecimal(1).MulInt(n)
		if !ok {
			return 0, fmt.Errorf("out of range")
		}
		return d, nil
	case float64:
		return market.ParseDecimal(strconv.FormatFloat(n, 'f', 8, 64))
	case string:
		return market.ParseDecimal(strings.TrimSpace(n))
	}
	return 0, fmt.Errorf("must be a number, not %T", v)
}
