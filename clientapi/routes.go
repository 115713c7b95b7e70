package clientapi

import "net/http"

type route struct {
	method string
	path   string // below the version prefix
	h      handler
	auth   bool
	raw    bool // path is absolute (no /_matrix/client/vN prefix)
	v1     bool // path lives under /_matrix/client/v1 only
}

func (rt route) prefixes() []string {
	if rt.raw {
		return []string{""}
	}
	if rt.v1 {
		return []string{"/_matrix/client/v1"}
	}
	return []string{"/_matrix/client/v3", "/_matrix/client/r0"}
}

const (
	get  = http.MethodGet
	post = http.MethodPost
	put  = http.MethodPut
	del  = http.MethodDelete
)

// routes is the single route table of the Client-Server API.
func (a *API) routes() []route {
	open := func(m, p string, h handler) route { return route{method: m, path: p, h: h} }
	user := func(m, p string, h handler) route { return route{method: m, path: p, h: h, auth: true} }
	raw := func(m, p string, h handler) route { return route{method: m, path: p, h: h, raw: true} }
	rawUser := func(m, p string, h handler) route { return route{method: m, path: p, h: h, raw: true, auth: true} }
	v1User := func(m, p string, h handler) route { return route{method: m, path: p, h: h, v1: true, auth: true} }
	return []route{
		// Server discovery and capabilities.
		raw(get, "/_matrix/client/versions", a.versions),
		user(get, "/capabilities", a.capabilities),

		// Accounts, login and devices.
		open(get, "/login", a.loginFlows),
		open(post, "/login", a.login),
		open(post, "/register", a.register),
		open(get, "/register/available", a.registerAvailable),
		user(post, "/logout", a.logout),
		user(post, "/logout/all", a.logoutAll),
		user(get, "/account/whoami", a.whoami),
		open(post, "/account/password", a.changePassword),
		open(post, "/account/deactivate", a.deactivate),
		user(get, "/devices", a.listDevices),
		user(get, "/devices/:deviceId", a.getDevice),
		user(put, "/devices/:deviceId", a.updateDevice),
		user(del, "/devices/:deviceId", a.deleteDevice),
		user(post, "/delete_devices", a.deleteDevices),
		raw(get, "/_synapse/admin/v1/register", a.adminRegisterNonce),
		raw(post, "/_synapse/admin/v1/register", a.adminRegister),

		// Profiles.
		open(get, "/profile/:userId", a.getProfile),
		open(get, "/profile/:userId/:field", a.getProfileField),
		user(put, "/profile/:userId/:field", a.putProfileField),

		// Rooms.
		user(post, "/createRoom", a.createRoom),
		user(post, "/join/:roomIdOrAlias", a.joinRoomIDOrAlias),
		user(post, "/rooms/:roomId/join", a.joinRoom),
		user(post, "/rooms/:roomId/invite", a.invite),
		user(post, "/rooms/:roomId/kick", a.kick),
		user(post, "/rooms/:roomId/ban", a.ban),
		user(post, "/rooms/:roomId/unban", a.unban),
		user(post, "/rooms/:roomId/leave", a.leave),
		user(post, "/rooms/:roomId/forget", a.forget),
		user(get, "/joined_rooms", a.joinedRooms),
		user(get, "/rooms/:roomId/joined_members", a.joinedMembers),
		user(get, "/rooms/:roomId/members", a.members),
		user(get, "/rooms/:roomId/state", a.stateAll),
		user(get, "/rooms/:roomId/state/:eventType", a.stateGet),
		user(get, "/rooms/:roomId/state/:eventType/:stateKey", a.stateGet),
		user(put, "/rooms/:roomId/state/:eventType", a.statePut),
		user(put, "/rooms/:roomId/state/:eventType/:stateKey", a.statePut),
		user(put, "/rooms/:roomId/send/:eventType/:txnId", a.send),
		user(post, "/rooms/:roomId/send/:eventType", a.sendNoTxn),
		user(put, "/rooms/:roomId/redact/:eventId/:txnId", a.redact),
		user(post, "/rooms/:roomId/redact/:eventId", a.redactNoTxn),
		user(get, "/rooms/:roomId/event/:eventId", a.getEvent),
		user(get, "/rooms/:roomId/context/:eventId", a.eventContext),
		user(get, "/rooms/:roomId/messages", a.messages),
		user(get, "/rooms/:roomId/aliases", a.roomAliases),
		open(get, "/directory/room/:alias", a.getAlias),
		user(put, "/directory/room/:alias", a.putAlias),
		user(del, "/directory/room/:alias", a.deleteAlias),
		open(get, "/directory/list/room/:roomId", a.getVisibility),
		user(put, "/directory/list/room/:roomId", a.putVisibility),
		open(get, "/publicRooms", a.publicRooms),
		user(post, "/publicRooms", a.publicRooms),

		// Sync, filters, account data.
		user(get, "/sync", a.sync),
		user(post, "/user/:userId/filter", a.createFilter),
		user(get, "/user/:userId/filter/:filterId", a.getFilter),
		user(get, "/user/:userId/account_data/:type", a.getAccountData),
		user(put, "/user/:userId/account_data/:type", a.putAccountData),
		user(get, "/user/:userId/rooms/:roomId/account_data/:type", a.getRoomAccountData),
		user(put, "/user/:userId/rooms/:roomId/account_data/:type", a.putRoomAccountData),

		// Ephemeral and device traffic.
		user(put, "/rooms/:roomId/typing/:userId", a.typing),
		user(post, "/rooms/:roomId/receipt/:receiptType/:eventId", a.receipt),
		user(post, "/rooms/:roomId/read_markers", a.readMarkers),
		user(get, "/presence/:userId/status", a.getPresence),
		user(put, "/presence/:userId/status", a.putPresence),
		user(put, "/sendToDevice/:eventType/:txnId", a.sendToDevice),
		user(get, "/voip/turnServer", a.turnServer),

		// The original design's legacy APIs.
		user(get, "/initialSync", a.initialSync),
		user(get, "/events", a.eventStream),
		user(get, "/events/:eventId", a.legacyGetEvent),
		user(get, "/rooms/:roomId/initialSync", a.roomInitialSync),

		// Push rules, pushers, notifications.
		user(get, "/pushrules/", a.getPushRules),
		user(get, "/pushrules/global/", a.getPushRulesGlobal),
		user(get, "/pushrules/global/:kind/:ruleId", a.getPushRule),
		user(put, "/pushrules/global/:kind/:ruleId", a.putPushRule),
		user(del, "/pushrules/global/:kind/:ruleId", a.deletePushRule),
		user(get, "/pushrules/global/:kind/:ruleId/enabled", a.getPushRuleEnabled),
		user(put, "/pushrules/global/:kind/:ruleId/enabled", a.putPushRuleEnabled),
		user(get, "/pushrules/global/:kind/:ruleId/actions", a.getPushRuleActions),
		user(put, "/pushrules/global/:kind/:ruleId/actions", a.putPushRuleActions),
		user(get, "/pushers", a.getPushers),
		user(post, "/pushers/set", a.setPusher),
		user(get, "/notifications", a.notifications),

		// End-to-end encryption keys and key backup.
		user(post, "/keys/upload", a.uploadKeys),
		user(post, "/keys/query", a.queryKeys),
		user(post, "/keys/claim", a.claimKeys),
		user(get, "/keys/changes", a.keyChanges),
		user(post, "/keys/device_signing/upload", a.uploadCrossSigningKeys),
		user(post, "/keys/signatures/upload", a.uploadSignatures),
		user(get, "/room_keys/version", a.getRoomKeysVersion),
		user(post, "/room_keys/version", a.createRoomKeysVersion),
		user(get, "/room_keys/version/:version", a.getRoomKeysVersion),
		user(put, "/room_keys/version/:version", a.updateRoomKeysVersion),
		user(del, "/room_keys/version/:version", a.deleteRoomKeysVersion),
		user(get, "/room_keys/keys", a.getRoomKeys),
		user(put, "/room_keys/keys", a.putRoomKeys),
		user(del, "/room_keys/keys", a.deleteRoomKeys),
		user(get, "/room_keys/keys/:roomId", a.getRoomKeys),
		user(put, "/room_keys/keys/:roomId", a.putRoomKeys),
		user(del, "/room_keys/keys/:roomId", a.deleteRoomKeys),
		user(get, "/room_keys/keys/:roomId/:sessionId", a.getRoomKeys),
		user(put, "/room_keys/keys/:roomId/:sessionId", a.putRoomKeys),
		user(del, "/room_keys/keys/:roomId/:sessionId", a.deleteRoomKeys),

		// Media repository (legacy unauthenticated and authenticated paths).
		rawUser(post, "/_matrix/media/v3/upload", a.uploadMedia),
		rawUser(post, "/_matrix/media/r0/upload", a.uploadMedia),
		rawUser(put, "/_matrix/media/v3/upload/:serverName/:mediaId", a.uploadMediaAsync),
		rawUser(post, "/_matrix/media/v1/create", a.createMediaID),
		raw(get, "/_matrix/media/v3/download/:serverName/:mediaId", a.downloadMedia),
		raw(get, "/_matrix/media/v3/download/:serverName/:mediaId/:fileName", a.downloadMedia),
		raw(get, "/_matrix/media/r0/download/:serverName/:mediaId", a.downloadMedia),
		raw(get, "/_matrix/media/r0/download/:serverName/:mediaId/:fileName", a.downloadMedia),
		raw(get, "/_matrix/media/v3/thumbnail/:serverName/:mediaId", a.thumbnailMedia),
		raw(get, "/_matrix/media/r0/thumbnail/:serverName/:mediaId", a.thumbnailMedia),
		rawUser(get, "/_matrix/media/v3/config", a.mediaConfig),
		rawUser(get, "/_matrix/media/r0/config", a.mediaConfig),
		v1User(get, "/media/download/:serverName/:mediaId", a.downloadMedia),
		v1User(get, "/media/download/:serverName/:mediaId/:fileName", a.downloadMedia),
		v1User(get, "/media/thumbnail/:serverName/:mediaId", a.thumbnailMedia),
		v1User(get, "/media/config", a.mediaConfig),

		// Directory search, tags, relations, threads, knocking and the rest
		// that clients call at start-up or from common screens.
		user(post, "/user_directory/search", a.userDirectorySearch),
		user(get, "/account/3pid", a.get3pids),
		user(get, "/thirdparty/protocols", a.thirdPartyProtocols),
		user(get, "/user/:userId/rooms/:roomId/tags", a.getTags),
		user(put, "/user/:userId/rooms/:roomId/tags/:tag", a.putTag),
		user(del, "/user/:userId/rooms/:roomId/tags/:tag", a.deleteTag),
		user(post, "/knock/:roomIdOrAlias", a.knock),
		user(post, "/search", a.search),
		user(post, "/rooms/:roomId/report/:eventId", a.reportEvent),
		user(post, "/rooms/:roomId/report", a.reportRoom),
		v1User(get, "/rooms/:roomId/relations/:eventId", a.relations),
		v1User(get, "/rooms/:roomId/relations/:eventId/:relType", a.relations),
		v1User(get, "/rooms/:roomId/relations/:eventId/:relType/:eventType", a.relations),
		v1User(get, "/rooms/:roomId/threads", a.threads),
		v1User(get, "/rooms/:roomId/timestamp_to_event", a.timestampToEvent),

		// Room upgrades, spaces, summaries, OpenID tokens and other later
		// additions that client SDKs call.
		user(post, "/rooms/:roomId/upgrade", a.upgradeRoom),
		v1User(get, "/rooms/:roomId/hierarchy", a.roomHierarchy),
		v1User(get, "/room_summary/:roomIdOrAlias", a.roomSummary),
		user(post, "/user/:userId/openid/request_token", a.openIDRequestToken),
		user(post, "/users/:userId/report", a.reportUser),
		user(del, "/profile/:userId/:field", a.deleteProfileField),
		v1User(get, "/mutual_rooms", a.mutualRooms),
	}
}
