package fsm

import "strings"

// TokenOwner is whom an access token belongs to.
type TokenOwner struct {
	UserID   string
	DeviceID string
}

// LookupToken finds the device a hashed access token belongs to.
func (r *ReadTx) LookupToken(hash []byte) (TokenOwner, bool) {
	v := r.get(bTokens, hash)
	if v == nil {
		return TokenOwner{}, false
	}
	user, device, _ := strings.Cut(string(v), "\x00")
	return TokenOwner{UserID: user, DeviceID: device}, true
}
