package clientapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/rooms"
)

// specVersions are the Client-Server API versions this server speaks.
var specVersions = []string{
	"r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
	"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12",
}

// supportedRoomVersions lists the room versions rooms/ can build and check.
func supportedRoomVersions() map[string]string {
	out := make(map[string]string, len(rooms.SupportedVersions))
	for v := range rooms.SupportedVersions {
		out[string(v)] = "stable"
	}
	return out
}

// versions is GET /_matrix/client/versions.
func (a *API) versions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{
		"versions":          specVersions,
		"unstable_features": map[string]bool{},
	})
}

// capabilities is GET /capabilities.
func (a *API) capabilities(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	enabled := func(b bool) map[string]bool { return map[string]bool{"enabled": b} }
	writeJSON(w, http.StatusOK, map[string]any{
		"capabilities": map[string]any{
			"m.change_password": enabled(true),
			"m.room_versions": map[string]any{
				"default":   a.cfg.Rooms.DefaultVersion,
				"available": supportedRoomVersions(),
			},
			"m.set_displayname": enabled(true),
			"m.set_avatar_url":  enabled(true),
			"m.3pid_changes":    enabled(false),
			// Only the fields this server stores can be set (PUT of any
			// other field is 403 M_FORBIDDEN).
			"m.profile_fields": map[string]any{"enabled": true, "allowed": profileFields},
		},
	})
}
