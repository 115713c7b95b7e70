// Package federation will hold the Server-Server API: inbound handlers, the
// key server, the outbound sender and the backfill client. It is empty until
// federation is built; the client API does not depend on it.
package federation
