// Package federation serves and speaks the Matrix Server-Server API.
//
// This file set is the foundation the federation endpoints build on:
//
//   - keys_server.go, keys_notary.go: GET /_matrix/key/v2/server and the
//     notary GET/POST /_matrix/key/v2/query, signed with the cluster's key
//     (keys_own.go reads it from the FSM).
//   - keyring.go, keyring_fetch.go, verify.go: other servers' keys fetched
//     directly or from trusted notaries, checked, cached in memory; JSON and
//     event signature verification.
//   - xmatrix.go, auth.go: X-Matrix header parsing and the request
//     authentication wrapper; Origin(r) names the authenticated server.
//   - client.go: the outbound client (mautrix's, with its server
//     name resolution) signing with our key, and its TLS policy.
//   - routes.go: THE route table; server.go: API, New, Handler.
package federation
