// Package operator lets the people who run a vmarket change how it
// behaves while it runs, and see what their code does:
//
//   - a registry of operator Lua modules: every upload is a new version,
//     compiled before it is accepted; one version of each module is
//     active, and require(name) in any script finds the active operator
//     module before the bundled ones;
//   - event hooks: functions of operator modules bound to market events
//     (order.created … template.uploaded) and to before-checks
//     (before.order.create, before.order.refund, before.template.upload)
//     that may reject an action;
//   - settings and secrets, per operator and per provider, read by scripts
//     through the runtime's settings module and sealed at rest;
//   - operator users (JWTs with a role and an expiry, revocable) and
//     rotation of the JWT signing keys;
//   - a record of every script and hook run, queryable by order, provider,
//     kind and time;
//   - dry runs of modules and hooks against sample events in a sandbox
//     with no effect outside it;
//   - hot reload of modules and hooks from a directory.
//
// # Consistency
//
// The active modules and the hook bindings form one immutable snapshot,
// swapped atomically after every change. A run takes the snapshot once,
// at its start, and resolves every require through it, so one run sees
// one consistent set of versions however activations interleave, and a
// change is visible to the next run without a restart.
//
// # Hooks
//
// A hook is a module-style chunk returning a table of functions. Binding
// (event, module, function) makes the module's function run on the event
// with one argument, the event table: the event's payload plus
// event = "<event name>". The function name defaults to the event's
// conventional name (FunctionFor): on_order_paid for order.paid,
// before_order_create for before.order.create.
//
// Before-checks run synchronously, one after the other in binding order,
// each with its own short deadline. A check rejects the action by
// returning {reject = "message"}: the action fails with a KindForbidden
// error carrying that message. A check that raises an error, hits a limit
// or times out does not block the action; its error is recorded. Only a
// returned rejection rejects.
//
// After-hooks run in the background on a bounded pool of workers, each
// with its own deadline. They never fail or delay the action that fired
// them: when the queue is full the event is dropped for that hook and the
// drop is recorded.
//
// Hooks see the operator's settings (not a provider's) and a kv scope of
// their own (OperatorKVScope); they may call the hosts the operator
// allows.
//
// # Settings
//
// Lifecycle scripts of a provider see the operator's settings overlaid
// with that provider's settings (a provider key wins). Secrets are sealed
// with XChaCha20-Poly1305 under a key kept in the data directory, never
// returned by the API (only a flag says a setting is secret) and redacted
// from logs, run records and dry-run answers.
package operator
