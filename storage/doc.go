// Package storage is vmarket's persistence. Its subpackages implement
// market.Store: sqlite (the default: one embedded database file).
package storage
