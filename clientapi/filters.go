package clientapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// createFilter is POST /user/{userId}/filter.
func (a *API) createFilter(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c, ok := ownUserParam(w, r, p, "create filters")
	if !ok {
		return
	}
	body, ok := a.readObject(w, r)
	if !ok {
		return
	}
	if err := checkFilterShape(body); err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "invalid filter: "+err.Error())
		return
	}
	v, idx, err := a.node.Propose(r.Context(), fsm.OpFilterCreate, fsm.FilterCreate{UserID: c.UserID, Filter: body})
	if err != nil {
		writeErr(w, err)
		return
	}
	id, isString := v.(string)
	if !isString {
		id = strconv.FormatUint(idx, 10) // Apply's ID is the entry's index
	}
	writeJSON(w, http.StatusOK, map[string]string{"filter_id": id})
}

// getFilter is GET /user/{userId}/filter/{filterId}.
func (a *API) getFilter(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c, ok := ownUserParam(w, r, p, "read filters")
	if !ok {
		return
	}
	var raw json.RawMessage
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		raw, _ = rt.Filter(c.UserID, p.ByName("filterId"))
		return nil
	})
	if raw == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "unknown filter")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
}

// filterFieldKind is the JSON type a known filter field must have.
type filterFieldKind int

const (
	fieldStrings filterFieldKind = iota
	fieldRoomIDs                 // strings starting with "!"
	fieldUserIDs                 // strings starting with "@"
	fieldBool
	fieldInt
	fieldEventFilter
	fieldRoomEventFilter
	fieldRoomFilter
	fieldEventFormat
)

var (
	eventFilterFields = map[string]filterFieldKind{
		"limit": fieldInt, "types": fieldStrings, "not_types": fieldStrings,
		"senders": fieldUserIDs, "not_senders": fieldUserIDs,
	}
	roomEventFilterFields = mergeFilterFields(eventFilterFields, map[string]filterFieldKind{
		"rooms": fieldRoomIDs, "not_rooms": fieldRoomIDs, "contains_url": fieldBool,
		"lazy_load_members": fieldBool, "include_redundant_members": fieldBool,
		"unread_thread_notifications": fieldBool, lateEventsField: fieldBool,
	})
	roomFilterFields = map[string]filterFieldKind{
		"rooms": fieldRoomIDs, "not_rooms": fieldRoomIDs, "include_leave": fieldBool,
		"ephemeral": fieldRoomEventFilter, "state": fieldRoomEventFilter,
		"timeline": fieldRoomEventFilter, "account_data": fieldRoomEventFilter,
	}
	syncFilterFields = map[string]filterFieldKind{
		"event_fields": fieldStrings, "event_format": fieldEventFormat,
		"presence": fieldEventFilter, "account_data": fieldEventFilter, "room": fieldRoomFilter,
	}
)

func mergeFilterFields(a, b map[string]filterFieldKind) map[string]filterFieldKind {
	out := map[string]filterFieldKind{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// checkFilterShape checks the known fields of a Filter (sync_filter.yaml)
// have the right JSON types; unknown fields are left alone.
func checkFilterShape(raw json.RawMessage) error {
	return checkFilterObject("", raw, syncFilterFields)
}

func checkFilterObject(path string, raw json.RawMessage, fields map[string]filterFieldKind) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return fmt.Errorf("%s must be an object", orTop(path))
	}
	for name, kind := range fields {
		v, ok := obj[name]
		if !ok || isJSONNull(v) {
			continue
		}
		if err := checkFilterField(path+name, v, kind); err != nil {
			return err
		}
	}
	return nil
}

func checkFilterField(path string, v json.RawMessage, kind filterFieldKind) error {
	var err error
	switch kind {
	case fieldStrings:
		var s []string
		err = json.Unmarshal(v, &s)
	case fieldRoomIDs, fieldUserIDs:
		// Synapse's schema, and Complement's invalid-filter test, refuse
		// IDs without their sigil.
		sigil := map[filterFieldKind]byte{fieldRoomIDs: '!', fieldUserIDs: '@'}[kind]
		var ids []string
		if err = json.Unmarshal(v, &ids); err == nil {
			for _, id := range ids {
				if len(id) < 2 || id[0] != sigil {
					return fmt.Errorf("%s: %q is not a %c-ID", path, id, sigil)
				}
			}
		}
	case fieldBool:
		var b bool
		err = json.Unmarshal(v, &b)
	case fieldInt:
		var n int64
		err = json.Unmarshal(v, &n)
	case fieldEventFormat:
		var s string
		if json.Unmarshal(v, &s) != nil || (s != "client" && s != "federation") {
			return fmt.Errorf("%s must be client or federation", path)
		}
	case fieldEventFilter:
		return checkFilterObject(path+".", v, eventFilterFields)
	case fieldRoomEventFilter:
		return checkFilterObject(path+".", v, roomEventFilterFields)
	case fieldRoomFilter:
		return checkFilterObject(path+".", v, roomFilterFields)
	}
	if err != nil {
		return fmt.Errorf("%s has the wrong type", path)
	}
	return nil
}

func orTop(path string) string {
	if path == "" {
		return "filter"
	}
	return path[:len(path)-1]
}
