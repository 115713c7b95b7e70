package fsm

import "net/http"

// Account, device and profile commands. The proposer validates the request,
// hashes passwords (bcrypt) and access tokens (sha256) and picks IDs and
// tokens; Apply re-checks what depends on the store (the user ID is free, the
// password did not change meanwhile, the device exists) and refuses with a
// Matrix error before its first write.
const (
	OpAccountRegister    = "account.register"
	OpAccountLogin       = "account.login"
	OpAccountLogout      = "account.logout"
	OpAccountLogoutAll   = "account.logout_all"
	OpAccountSetPassword = "account.set_password"
	OpAccountDeactivate  = "account.deactivate"
	OpDeviceUpdate       = "device.update"
	OpDeviceDelete       = "device.delete"
	OpProfileSet         = "profile.set"
)

func init() {
	register(OpAccountRegister, applyRegister)
	register(OpAccountLogin, applyLogin)
	register(OpAccountLogout, applyLogout)
	register(OpAccountLogoutAll, applyLogoutAll)
	register(OpAccountSetPassword, applySetPassword)
	register(OpAccountDeactivate, applyDeactivate)
	register(OpDeviceUpdate, applyDeviceUpdate)
	register(OpDeviceDelete, applyDeviceDelete)
	register(OpProfileSet, applyProfileSet)
}

// NewDevice is a device a command creates (or re-keys), with the sha256 of
// its new access token.
type NewDevice struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	TokenHash   []byte `json:"token_hash"`
	IP          string `json:"ip,omitempty"`
}

// RegisterCmd creates an account, and a logged-in device unless Device is nil
// (inhibit_login).
type RegisterCmd struct {
	UserID       string     `json:"user_id"`
	PasswordHash string     `json:"password_hash,omitempty"`
	Admin        bool       `json:"admin,omitempty"`
	UserType     string     `json:"user_type,omitempty"`
	DisplayName  string     `json:"displayname,omitempty"`
	Device       *NewDevice `json:"device,omitempty"`
}

// LoginCmd logs a user in on a device. PasswordHash is the stored hash the
// proposer checked the password against: if it changed before the command
// applies, the login is refused.
type LoginCmd struct {
	UserID       string    `json:"user_id"`
	PasswordHash string    `json:"password_hash"`
	Device       NewDevice `json:"device"`
}

// LoginResult tells whether an existing device was re-keyed.
type LoginResult struct {
	DeviceID string `json:"device_id"`
	Existed  bool   `json:"existed,omitempty"`
}

// LogoutCmd deletes one device and its access token.
type LogoutCmd struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// LogoutAllCmd deletes every device of a user and their access tokens.
type LogoutAllCmd struct {
	UserID string `json:"user_id"`
}

// SetPasswordCmd replaces the password hash; with LogoutDevices it also
// deletes every device but KeepDevice.
type SetPasswordCmd struct {
	UserID        string `json:"user_id"`
	PasswordHash  string `json:"password_hash"`
	LogoutDevices bool   `json:"logout_devices,omitempty"`
	KeepDevice    string `json:"keep_device,omitempty"`
}

// DeactivateCmd deactivates an account and deletes all its devices; Erase
// also clears the profile.
type DeactivateCmd struct {
	UserID string `json:"user_id"`
	Erase  bool   `json:"erase,omitempty"`
}

// DeviceUpdateCmd changes an existing device's display name (nil: unchanged).
type DeviceUpdateCmd struct {
	UserID      string  `json:"user_id"`
	DeviceID    string  `json:"device_id"`
	DisplayName *string `json:"display_name,omitempty"`
}

// DeviceDeleteCmd deletes devices; unknown ones are skipped.
type DeviceDeleteCmd struct {
	UserID    string   `json:"user_id"`
	DeviceIDs []string `json:"device_ids"`
}

// DeviceDeleteResult lists the devices that existed and were deleted.
type DeviceDeleteResult struct {
	Deleted []string `json:"deleted"`
}

// ProfileSetCmd sets profile fields; nil leaves a field unchanged and ""
// clears it.
type ProfileSetCmd struct {
	UserID      string  `json:"user_id"`
	DisplayName *string `json:"displayname,omitempty"`
	AvatarURL   *string `json:"avatar_url,omitempty"`
}

// ProfileResult is the profile after a change.
type ProfileResult struct {
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

func applyRegister(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[RegisterCmd](cmd)
	if err != nil {
		return nil, err
	}
	if err := checkUserID(c.UserID); err != nil {
		return nil, err
	}
	if c.PasswordHash != "" {
		if err := checkPasswordHash(c.PasswordHash); err != nil {
			return nil, err
		}
	}
	if _, err := w.User(c.UserID); err == nil {
		return nil, Errorf(http.StatusBadRequest, "M_USER_IN_USE", "User ID already taken.")
	}
	if c.Device != nil {
		if err := w.checkNewDevice(c.Device); err != nil {
			return nil, err
		}
	}
	u := UserRecord{
		UserID: c.UserID, PasswordHash: c.PasswordHash, CreatedTS: cmd.TS,
		Admin: c.Admin, UserType: c.UserType, DisplayName: c.DisplayName,
	}
	if err := w.putJSON(bUsers, []byte(c.UserID), &u); err != nil {
		return nil, err
	}
	if c.Device != nil {
		d := &DeviceRecord{UserID: c.UserID, DeviceID: c.Device.DeviceID, DisplayName: c.Device.DisplayName, CreatedTS: cmd.TS}
		if err := w.rekeyDevice(d, c.Device, cmd.TS); err != nil {
			return nil, err
		}
		if err := w.e2eeDeviceAdded(c.UserID); err != nil {
			return nil, err
		}
	}
	w.touchUser(c.UserID)
	return nil, nil
}

func applyLogin(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[LoginCmd](cmd)
	if err != nil {
		return nil, err
	}
	u, err := w.User(c.UserID)
	if err != nil || u.PasswordHash == "" || u.PasswordHash != c.PasswordHash {
		return nil, Errorf(http.StatusForbidden, "M_FORBIDDEN", "Invalid username or password")
	}
	if u.Deactivated {
		return nil, Errorf(http.StatusForbidden, "M_USER_DEACTIVATED", "This account has been deactivated")
	}
	if err := w.checkNewDevice(&c.Device); err != nil {
		return nil, err
	}
	d, err := w.Device(c.UserID, c.Device.DeviceID)
	existed := err == nil
	if !existed {
		d = &DeviceRecord{UserID: c.UserID, DeviceID: c.Device.DeviceID, DisplayName: c.Device.DisplayName, CreatedTS: cmd.TS}
	}
	if err := w.rekeyDevice(d, &c.Device, cmd.TS); err != nil {
		return nil, err
	}
	if !existed {
		if err := w.e2eeDeviceAdded(c.UserID); err != nil {
			return nil, err
		}
	}
	w.touchUser(c.UserID)
	return LoginResult{DeviceID: d.DeviceID, Existed: existed}, nil
}

func applyLogout(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[LogoutCmd](cmd)
	if err != nil {
		return nil, err
	}
	if c.UserID == "" || c.DeviceID == "" {
		return nil, errBadRequest("user_id and device_id are required")
	}
	if _, err := w.deleteDevice(c.UserID, c.DeviceID); err != nil {
		return nil, err
	}
	w.touchUser(c.UserID)
	return nil, nil
}

func applyLogoutAll(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[LogoutAllCmd](cmd)
	if err != nil {
		return nil, err
	}
	if c.UserID == "" {
		return nil, errBadRequest("user_id is required")
	}
	if _, err := w.deleteDevicesExcept(c.UserID, ""); err != nil {
		return nil, err
	}
	w.touchUser(c.UserID)
	return nil, nil
}

func applySetPassword(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[SetPasswordCmd](cmd)
	if err != nil {
		return nil, err
	}
	u, err := w.User(c.UserID)
	if err != nil {
		return nil, errNotFound("unknown user %s", c.UserID)
	}
	if u.Deactivated {
		return nil, Errorf(http.StatusForbidden, "M_USER_DEACTIVATED", "This account has been deactivated")
	}
	if c.PasswordHash == "" {
		return nil, errBadRequest("password_hash is required")
	}
	if err := checkPasswordHash(c.PasswordHash); err != nil {
		return nil, err
	}
	u.PasswordHash = c.PasswordHash
	if err := w.putJSON(bUsers, []byte(c.UserID), u); err != nil {
		return nil, err
	}
	if c.LogoutDevices {
		if _, err := w.deleteDevicesExcept(c.UserID, c.KeepDevice); err != nil {
			return nil, err
		}
	}
	w.touchUser(c.UserID)
	return nil, nil
}

func applyDeactivate(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[DeactivateCmd](cmd)
	if err != nil {
		return nil, err
	}
	u, err := w.User(c.UserID)
	if err != nil {
		return nil, errNotFound("unknown user %s", c.UserID)
	}
	u.Deactivated = true
	if c.Erase {
		u.DisplayName, u.AvatarURL = "", ""
	}
	if err := w.putJSON(bUsers, []byte(c.UserID), u); err != nil {
		return nil, err
	}
	if _, err := w.deleteDevicesExcept(c.UserID, ""); err != nil {
		return nil, err
	}
	w.touchUser(c.UserID)
	return nil, nil
}

func applyDeviceUpdate(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[DeviceUpdateCmd](cmd)
	if err != nil {
		return nil, err
	}
	d, err := w.Device(c.UserID, c.DeviceID)
	if err != nil {
		return nil, errNotFound("Unknown device")
	}
	if c.DisplayName == nil {
		return nil, nil
	}
	d.DisplayName = *c.DisplayName
	if err := w.putJSON(bDevices, key(c.UserID, c.DeviceID), d); err != nil {
		return nil, err
	}
	w.touchUser(c.UserID)
	return nil, nil
}

func applyDeviceDelete(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[DeviceDeleteCmd](cmd)
	if err != nil {
		return nil, err
	}
	if c.UserID == "" {
		return nil, errBadRequest("user_id is required")
	}
	res := DeviceDeleteResult{Deleted: []string{}}
	for _, id := range c.DeviceIDs {
		ok, err := w.deleteDevice(c.UserID, id)
		if err != nil {
			return nil, err
		}
		if ok {
			res.Deleted = append(res.Deleted, id)
		}
	}
	if len(res.Deleted) > 0 {
		w.touchUser(c.UserID)
	}
	return res, nil
}

func applyProfileSet(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[ProfileSetCmd](cmd)
	if err != nil {
		return nil, err
	}
	u, err := w.User(c.UserID)
	if err != nil {
		return nil, errNotFound("Profile not found")
	}
	if u.Deactivated {
		return nil, errForbidden("This account has been deactivated")
	}
	if c.DisplayName != nil {
		u.DisplayName = *c.DisplayName
	}
	if c.AvatarURL != nil {
		u.AvatarURL = *c.AvatarURL
	}
	if err := w.putJSON(bUsers, []byte(c.UserID), u); err != nil {
		return nil, err
	}
	w.touchUser(c.UserID)
	return ProfileResult{DisplayName: u.DisplayName, AvatarURL: u.AvatarURL}, nil
}
