package fsm

import "encoding/json"

// UserRecord is an account. Passwords are stored only as hashes.
type UserRecord struct {
	UserID       string `json:"user_id"`
	PasswordHash string `json:"password_hash,omitempty"`
	CreatedTS    int64  `json:"created_ts"`
	Deactivated  bool   `json:"deactivated,omitempty"`
	Admin        bool   `json:"admin,omitempty"`
	Guest        bool   `json:"guest,omitempty"`
	UserType     string `json:"user_type,omitempty"` // "", "bot" or "support" (shared-secret registration)
	DisplayName  string `json:"displayname,omitempty"`
	AvatarURL    string `json:"avatar_url,omitempty"`
}

// User reads an account by full user ID.
func (r *ReadTx) User(userID string) (*UserRecord, error) {
	var u UserRecord
	if err := r.getJSON(bUsers, []byte(userID), &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// DeviceRecord is one device of a user, with the hash of its current access
// token (never the token itself).
type DeviceRecord struct {
	UserID      string `json:"user_id"`
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	TokenHash   []byte `json:"token_hash,omitempty"`
	CreatedTS   int64  `json:"created_ts"`
	LastSeenTS  int64  `json:"last_seen_ts,omitempty"`
	LastSeenIP  string `json:"last_seen_ip,omitempty"`
}

// Device reads one device of a user.
func (r *ReadTx) Device(userID, deviceID string) (*DeviceRecord, error) {
	var d DeviceRecord
	if err := r.getJSON(bDevices, key(userID, deviceID), &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Devices lists a user's devices in device ID order.
func (r *ReadTx) Devices(userID string) []DeviceRecord {
	var out []DeviceRecord
	r.scan(bDevices, prefix(userID), func(_, v []byte) bool {
		var d DeviceRecord
		if json.Unmarshal(v, &d) == nil {
			out = append(out, d)
		}
		return true
	})
	return out
}
