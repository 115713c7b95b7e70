package clientapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Pushers (pusher.yaml). They are stored through the log; nothing is sent
// to push gateways yet.

// pushGatewayPath is the only path an HTTP pusher's URL may have.
const pushGatewayPath = "/_matrix/push/v1/notify"

// clientPusher is the Pusher object of GET /pushers.
type clientPusher struct {
	Pushkey           string          `json:"pushkey"`
	Kind              string          `json:"kind"`
	AppID             string          `json:"app_id"`
	AppDisplayName    string          `json:"app_display_name"`
	DeviceDisplayName string          `json:"device_display_name"`
	ProfileTag        string          `json:"profile_tag,omitempty"`
	Lang              string          `json:"lang"`
	Data              json.RawMessage `json:"data"`
}

func (a *API) getPushers(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	var recs []fsm.PusherRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		recs = rt.Pushers(callerOf(r).UserID)
		return nil
	})
	out := make([]clientPusher, 0, len(recs))
	for _, p := range recs {
		out = append(out, clientPusher{Pushkey: p.Pushkey, Kind: p.Kind, AppID: p.AppID,
			AppDisplayName: p.AppDisplayName, DeviceDisplayName: p.DeviceDisplayName,
			ProfileTag: p.ProfileTag, Lang: p.Lang, Data: p.Data})
	}
	writeJSON(w, http.StatusOK, map[string]any{"pushers": out})
}

func (a *API) setPusher(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	var body map[string]json.RawMessage
	if !a.readJSON(w, r, &body) {
		return
	}
	c := callerOf(r)
	cmd, herr := parsePusherSet(body)
	if herr != nil {
		writeErr(w, herr)
		return
	}
	cmd.UserID, cmd.Pusher.DeviceID = c.UserID, c.DeviceID
	if _, ok := a.propose(w, r.Context(), fsm.OpPusherSet, cmd); ok {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// parsePusherSet checks a /pushers/set body: kind null deletes and needs
// only app_id and pushkey; otherwise every field the spec requires.
func parsePusherSet(body map[string]json.RawMessage) (*fsm.PusherSet, *fsm.Error) {
	if body == nil {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "body must be an object")
	}
	required := []string{"kind", "app_id", "pushkey"}
	rawKind, hasKind := body["kind"]
	deleting := hasKind && string(rawKind) == "null"
	if !deleting {
		required = append(required, "app_display_name", "device_display_name", "lang", "data")
	}
	var missing []string
	for _, f := range required {
		if v, ok := body[f]; !ok || (string(v) == "null" && f != "kind") {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fsm.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing parameters: %s", strings.Join(missing, ", "))
	}
	cmd := &fsm.PusherSet{Delete: deleting}
	p := &cmd.Pusher
	if herr := strFields(body, []string{"app_id", "pushkey"}, &p.AppID, &p.Pushkey); herr != nil {
		return nil, herr
	}
	if herr := fsm.CheckPusherKey(p.AppID, p.Pushkey); herr != nil {
		return nil, herr
	}
	if deleting {
		return cmd, nil
	}
	if herr := strFields(body, []string{"kind", "app_display_name", "device_display_name", "profile_tag", "lang"},
		&p.Kind, &p.AppDisplayName, &p.DeviceDisplayName, &p.ProfileTag, &p.Lang); herr != nil {
		return nil, herr
	}
	if raw, ok := body["append"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &cmd.Append) != nil {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "append must be a boolean")
		}
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(body["data"], &data) != nil || data == nil {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "data must be an object")
	}
	p.Data = body["data"]
	switch p.Kind {
	case "http":
		if herr := checkGatewayURL(data["url"]); herr != nil {
			return nil, herr
		}
	case "email":
		// Kept as asked; this server sends no email.
	default:
		return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unknown pusher kind %q", p.Kind)
	}
	return cmd, nil
}

// strFields decodes the named string fields (absent or null leave them
// empty).
func strFields(body map[string]json.RawMessage, names []string, dsts ...*string) *fsm.Error {
	for i, name := range names {
		raw, ok := body[name]
		if !ok || string(raw) == "null" {
			continue
		}
		if json.Unmarshal(raw, dsts[i]) != nil {
			return fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "%s must be a string", name)
		}
	}
	return nil
}

// checkGatewayURL wants data.url to be an absolute http(s) URL whose path is
// /_matrix/push/v1/notify (the spec asks for HTTPS; plain HTTP is allowed
// for gateways on a private network or under test).
func checkGatewayURL(raw json.RawMessage) *fsm.Error {
	var s string
	if len(raw) == 0 || string(raw) == "null" {
		return fsm.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "data.url is required for http pushers")
	}
	if json.Unmarshal(raw, &s) != nil {
		return fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "data.url must be a string")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "data.url must be an absolute HTTPS URL")
	}
	if u.Path != pushGatewayPath {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "data.url must have the path %s", pushGatewayPath)
	}
	return nil
}
