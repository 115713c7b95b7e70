package fsm

import "encoding/json"

// OpenID tokens (openid.yaml): a client asks for one and hands it to a
// third party, which trades it at any node's federation userinfo endpoint
// for the user ID. Only the sha256 of the token enters the log.
//
//	openid_tokens: sha256(token) -> openIDRecord
//	openid_expiry: expires_ts(8) sha256(token) -> "" (for pruning)
const OpOpenIDIssue = "openid.issue"

var (
	bOpenIDTokens = []byte("openid_tokens")
	bOpenIDExpiry = []byte("openid_expiry")
)

// openIDPruneBatch bounds how many expired tokens one issue removes, so
// Apply stays short however many expired meanwhile.
const openIDPruneBatch = 64

func init() {
	register(OpOpenIDIssue, applyOpenIDIssue)
}

// OpenIDIssueCmd stores a new OpenID token for a user until ExpiresTS
// (unix ms, chosen by the proposer).
type OpenIDIssueCmd struct {
	UserID    string `json:"user_id"`
	TokenHash []byte `json:"token_hash"`
	ExpiresTS int64  `json:"expires_ts"`
}

type openIDRecord struct {
	UserID    string `json:"user_id"`
	ExpiresTS int64  `json:"expires_ts"`
}

func applyOpenIDIssue(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[OpenIDIssueCmd](cmd)
	if err != nil {
		return nil, err
	}
	if len(c.TokenHash) != 32 {
		return nil, errBadRequest("token_hash must be a sha256")
	}
	if c.ExpiresTS <= cmd.TS {
		return nil, errBadRequest("expires_ts is in the past")
	}
	u, err := w.User(c.UserID)
	if err != nil {
		return nil, errNotFound("unknown user %s", c.UserID)
	}
	if u.Deactivated {
		return nil, errForbidden("This account has been deactivated")
	}
	if w.get(bOpenIDTokens, c.TokenHash) != nil {
		return nil, errBadRequest("token already issued")
	}
	if err := w.pruneOpenIDTokens(cmd.TS); err != nil {
		return nil, err
	}
	if err := w.putJSON(bOpenIDTokens, c.TokenHash, openIDRecord{UserID: c.UserID, ExpiresTS: c.ExpiresTS}); err != nil {
		return nil, err
	}
	return nil, w.put(bOpenIDExpiry, openIDExpiryKey(c.ExpiresTS, c.TokenHash), []byte{})
}

// pruneOpenIDTokens drops tokens that expired before now (the command's
// timestamp, the same on every node), oldest first.
func (w *WriteTx) pruneOpenIDTokens(now int64) error {
	var keys [][]byte
	w.scan(bOpenIDExpiry, nil, func(k, _ []byte) bool {
		if len(keys) >= openIDPruneBatch || len(k) < 8 || int64(getU64(k[:8])) > now {
			return false
		}
		keys = append(keys, append([]byte{}, k...))
		return true
	})
	for _, k := range keys {
		if err := w.del(bOpenIDTokens, k[8:]); err != nil {
			return err
		}
		if err := w.del(bOpenIDExpiry, k); err != nil {
			return err
		}
	}
	return nil
}

func openIDExpiryKey(expires int64, hash []byte) []byte {
	return append(u64(uint64(max(expires, 0))), hash...)
}

// OpenIDTokenUser is the user a hashed OpenID token was issued to, if it
// exists and has not expired by nowMS.
func (r *ReadTx) OpenIDTokenUser(hash []byte, nowMS int64) (string, bool) {
	raw := r.get(bOpenIDTokens, hash)
	if raw == nil {
		return "", false
	}
	var rec openIDRecord
	if err := json.Unmarshal(raw, &rec); err != nil || rec.ExpiresTS <= nowMS {
		return "", false
	}
	return rec.UserID, true
}
