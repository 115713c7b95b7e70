package federation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"
)

// refresh fetches server's keys unless a fetch is running (then it waits
// for that one), the last one failed and its backoff runs, or the last one
// succeeded less than minRefetchInterval ago. pred says when we hold
// enough: the fetch stops asking notaries once it holds.
func (k *Keyring) refresh(ctx context.Context, server string, minValid time.Time, pred func(*keyEntry) bool) error {
	for {
		k.mu.Lock()
		if ch := k.inflight[server]; ch != nil {
			k.mu.Unlock()
			select {
			case <-ch:
				continue // the rate limit below now applies to us
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		e := k.entry(server)
		now := k.now()
		if e.failures > 0 && now.Before(e.lastFetch.Add(fetchBackoff(e.failures))) {
			err := e.lastErr
			k.mu.Unlock()
			return fmt.Errorf("%w: %v", ErrKeyFetchBackoff, err)
		}
		if e.failures == 0 && !e.lastFetch.IsZero() && now.Before(e.lastFetch.Add(minRefetchInterval)) {
			k.mu.Unlock()
			return nil
		}
		done := make(chan struct{})
		k.inflight[server] = done
		k.mu.Unlock()

		// Detached: a caller that gives up must not turn the shared fetch
		// into a failure that every other caller then backs off on.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyFetchTimeout)
		err := k.fetch(fctx, server, minValid, pred)
		cancel()

		k.mu.Lock()
		e = k.entry(server)
		e.lastFetch = k.now()
		if err != nil {
			e.failures++
			e.lastErr = err
			k.log.Debug("key fetch failed", "server", server, "failures", e.failures, "error", err)
		} else {
			e.failures, e.lastErr = 0, nil
		}
		delete(k.inflight, server)
		close(done)
		k.mu.Unlock()
		return err
	}
}

func fetchBackoff(failures int) time.Duration {
	d := minFetchBackoff << min(failures-1, 16)
	return min(d, maxFetchBackoff)
}

// fetch asks server itself, then each notary until pred holds. It fails
// only when no source answered at all.
func (k *Keyring) fetch(ctx context.Context, server string, minValid time.Time, pred func(*keyEntry) bool) error {
	var errs []error
	answered := false
	if err := k.fetchDirect(ctx, server); err != nil {
		errs = append(errs, fmt.Errorf("direct: %w", err))
	} else {
		answered = true
		if k.has(server, pred) {
			return nil
		}
	}
	for _, n := range k.notaries {
		if n.ServerName == server || n.ServerName == k.serverName {
			continue
		}
		if err := k.fetchNotary(ctx, n, server, minValid); err != nil {
			errs = append(errs, fmt.Errorf("notary %s: %w", n.ServerName, err))
			continue
		}
		answered = true
		if k.has(server, pred) {
			return nil
		}
	}
	if answered {
		return nil
	}
	return errors.Join(errs...)
}

// fetchDirect is GET /_matrix/key/v2/server on the server itself.
func (k *Keyring) fetchDirect(ctx context.Context, server string) error {
	resp, err := k.client.keyFetch.ServerKeys(ctx, server)
	if err != nil {
		return err
	}
	if resp == nil {
		return errors.New("empty key response")
	}
	return k.accept(server, resp.Raw, "")
}

// fetchNotary is GET /_matrix/key/v2/query/{server} on a notary; each
// document must carry the server's and the notary's signatures.
func (k *Keyring) fetchNotary(ctx context.Context, n TrustedKeyServer, server string, minValid time.Time) error {
	var resp mfed.QueryKeysResponse
	_, _, err := k.client.keyFetch.MakeFullRequest(ctx, mfed.RequestParams{
		ServerName:   n.ServerName,
		Method:       http.MethodGet,
		Path:         mfed.KeyURLPath{"v2", "query", server},
		Query:        url.Values{"minimum_valid_until_ts": {strconv.FormatInt(minValid.UnixMilli(), 10)}},
		ResponseJSON: &resp,
	})
	if err != nil {
		return err
	}
	accepted := 0
	var errs []error
	for _, doc := range resp.ServerKeys {
		if doc == nil || doc.ServerName != server {
			continue
		}
		if err := k.checkNotarySignature(ctx, n, doc.Raw); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := k.accept(server, doc.Raw, n.ServerName); err != nil {
			errs = append(errs, err)
			continue
		}
		accepted++
	}
	if accepted == 0 {
		return fmt.Errorf("no usable keys for %s: %w", server, errors.Join(errs...))
	}
	return nil
}

// checkNotarySignature wants one valid signature of the notary, by a pinned
// key or by one of its current keys. Its keys are fetched directly and
// outside the per-server fetch lock, so two notaries vouching for each
// other cannot wait on each other.
func (k *Keyring) checkNotarySignature(ctx context.Context, n TrustedKeyServer, raw json.RawMessage) error {
	var doc struct {
		Signatures map[string]map[id.KeyID]string `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	fetched := false
	for keyID := range doc.Signatures[n.ServerName] {
		var key id.SigningKey
		if len(n.VerifyKeys) > 0 {
			key = n.VerifyKeys[keyID]
		} else {
			sk, ok := k.cached(n.ServerName, keyID)
			if !ok && !fetched {
				fetched = true
				if err := k.fetchDirect(ctx, n.ServerName); err != nil {
					return fmt.Errorf("keys of notary %s: %w", n.ServerName, err)
				}
				sk, ok = k.cached(n.ServerName, keyID)
			}
			if ok && !sk.Expired && !sk.ValidUntil.Before(k.now()) {
				key = sk.Key
			}
		}
		if key != "" && signutil.VerifyJSON(n.ServerName, keyID, key, raw) == nil {
			return nil
		}
	}
	return fmt.Errorf("answer not signed by notary %s", n.ServerName)
}

// accept checks a key document for server (its name, its keys, at least
// one valid self-signature by a listed verify key and no bad one) and merges
// it: a document older than the newest we hold only adds keys we lacked.
func (k *Keyring) accept(server string, raw json.RawMessage, via string) error {
	var doc mfed.ServerKeyResponse
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("bad key document: %w", err)
	}
	if doc.ServerName != server {
		return fmt.Errorf("key document is for %q, not %q", doc.ServerName, server)
	}
	validUntil := doc.ValidUntilTS.Time
	if doc.ValidUntilTS.IsZero() {
		return errors.New("key document has no valid_until_ts")
	}
	now := k.now()
	capped := minTime(validUntil, now.Add(maxKeyValidity))
	keys := map[id.KeyID]ServerKey{}
	for keyID, old := range doc.OldVerifyKeys {
		if pub, err := decodeVerifyKey(keyID, old.Key); err == nil {
			keys[keyID] = ServerKey{Key: encodeKey(pub), ValidUntil: minTime(old.ExpiredTS.Time, now.Add(maxKeyValidity)), Expired: true}
		}
	}
	for keyID, vk := range doc.VerifyKeys {
		if !isEd25519KeyID(keyID) {
			continue // algorithms we do not know are ignored
		}
		pub, err := decodeVerifyKey(keyID, vk.Key)
		if err != nil {
			return err
		}
		keys[keyID] = ServerKey{Key: encodeKey(pub), ValidUntil: capped}
	}
	signed := 0
	for keyID := range doc.Signatures[server] {
		sk, ok := keys[keyID]
		if !ok || sk.Expired {
			continue
		}
		if err := signutil.VerifyJSON(server, keyID, sk.Key, raw); err != nil {
			return fmt.Errorf("self-signature %s: %w", keyID, err)
		}
		signed++
	}
	if signed == 0 {
		return errors.New("key document is not signed by any of its verify keys")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.entry(server)
	newer := !validUntil.Before(e.rawValidUntil)
	for keyID, sk := range keys {
		if _, had := e.keys[keyID]; !had || newer {
			e.keys[keyID] = sk
		}
	}
	if newer {
		e.raw, e.rawValidUntil, e.rawFetchedAt = raw, validUntil, now
	}
	k.log.Debug("accepted server keys", "server", server, "via", via, "keys", len(keys), "valid_until", validUntil)
	return nil
}

func encodeKey(pub []byte) id.SigningKey {
	return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
