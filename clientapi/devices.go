package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// maxDeleteDevices bounds one POST /delete_devices.
const maxDeleteDevices = 1000

// clientDevice is the spec's Device object.
type clientDevice struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	LastSeenIP  string `json:"last_seen_ip,omitempty"`
	LastSeenTS  int64  `json:"last_seen_ts,omitempty"`
}

func toClientDevice(d *fsm.DeviceRecord) clientDevice {
	return clientDevice{DeviceID: d.DeviceID, DisplayName: d.DisplayName, LastSeenIP: d.LastSeenIP, LastSeenTS: d.LastSeenTS}
}

// listDevices is GET /devices.
func (a *API) listDevices(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	out := []clientDevice{}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for _, d := range rt.Devices(c.UserID) {
			out = append(out, toClientDevice(&d))
		}
		return nil
	})
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

// getDevice is GET /devices/{deviceId}.
func (a *API) getDevice(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var d *fsm.DeviceRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		d, _ = rt.Device(c.UserID, p.ByName("deviceId"))
		return nil
	})
	if d == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Unknown device")
		return
	}
	writeJSON(w, http.StatusOK, toClientDevice(d))
}

// updateDevice is PUT /devices/{deviceId}: regular clients may only rename
// existing devices (creation is for application services).
func (a *API) updateDevice(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	deviceID := p.ByName("deviceId")
	if req.DisplayName != nil {
		if herr := checkDevice("", *req.DisplayName); herr != nil {
			writeErr(w, herr)
			return
		}
	}
	cmd := fsm.DeviceUpdateCmd{UserID: c.UserID, DeviceID: deviceID, DisplayName: req.DisplayName}
	if _, ok := a.propose(w, r.Context(), fsm.OpDeviceUpdate, cmd); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// deleteDevice is DELETE /devices/{deviceId} (UIA with m.login.password).
// A device that does not exist (any more) is not an error (spec: "or had
// been removed previously").
func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var req struct {
		Auth json.RawMessage `json:"auth"`
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	deviceID := p.ByName("deviceId")
	if !a.requireUIA(w, req.Auth, uiaRequest{endpoint: "DELETE /devices/" + deviceID, stage: stagePassword, userID: c.UserID}) {
		return
	}
	if _, ok := a.propose(w, r.Context(), fsm.OpDeviceDelete, fsm.DeviceDeleteCmd{UserID: c.UserID, DeviceIDs: []string{deviceID}}); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// deleteDevices is POST /delete_devices (UIA with m.login.password).
func (a *API) deleteDevices(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	var req struct {
		Devices *[]string       `json:"devices"`
		Auth    json.RawMessage `json:"auth"`
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.Devices == nil {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing devices")
		return
	}
	if len(*req.Devices) > maxDeleteDevices {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "too many devices (max 1000)")
		return
	}
	if !a.requireUIA(w, req.Auth, uiaRequest{endpoint: "POST /delete_devices", stage: stagePassword, userID: c.UserID}) {
		return
	}
	if len(*req.Devices) > 0 {
		cmd := fsm.DeviceDeleteCmd{UserID: c.UserID, DeviceIDs: *req.Devices}
		if _, ok := a.propose(w, r.Context(), fsm.OpDeviceDelete, cmd); !ok {
			return
		}
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
