// Package market holds vmarket's domain: the catalog (providers, categories,
// service types and their price sets), orders and user services, their
// statuses and transitions, pricing, and the errors the rest of the program
// maps to transports. It imports no other package of this module; storage,
// the HTTP API, the Lua runtime and the lifecycle worker implement or use the
// interfaces declared here.
package market
