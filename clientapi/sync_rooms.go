package clientapi

import (
	"slices"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// The rooms part of /sync: which rooms appear in which section, and each
// room's timeline.

type syncTimeline struct {
	Events    []any  `json:"events"`
	Limited   bool   `json:"limited"`
	PrevBatch string `json:"prev_batch,omitempty"`
}

type unreadCounts struct {
	Highlight    int `json:"highlight_count"`
	Notification int `json:"notification_count"`
}

type joinedRoom struct {
	Summary             *roomSummary `json:"summary"`
	State               eventList    `json:"state"`
	Timeline            syncTimeline `json:"timeline"`
	Ephemeral           eventList    `json:"ephemeral"`
	AccountData         eventList    `json:"account_data"`
	UnreadNotifications unreadCounts `json:"unread_notifications"`
	// UnreadThreadNotifications is sent when the filter asks for it.
	UnreadThreadNotifications map[string]unreadCounts `json:"unread_thread_notifications,omitempty"`
}

type leftRoom struct {
	State       eventList    `json:"state"`
	Timeline    syncTimeline `json:"timeline"`
	AccountData eventList    `json:"account_data"`
}

// strippedRoom is an invited (invite_state) or knocked (knock_state) room.
type strippedRoom struct {
	InviteState *eventList `json:"invite_state,omitempty"`
	KnockState  *eventList `json:"knock_state,omitempty"`
}

// syncer computes one /sync response inside one read transaction.
type syncer struct {
	a           *API
	rt          *fsm.ReadTx
	p           *syncParams
	f           *syncFilter
	user        string
	since       int64 // -1 for an initial sync
	ephSince    int64
	ephNow      int64
	upto        int64 // every position in this view is <= upto
	events      map[string]*fsm.EventRecord
	vis         map[string]*roomVisibility
	myRooms     map[string]fsm.MembershipRecord
	globalAD    []fsm.AccountDataRecord
	roomAD      map[string][]fsm.AccountDataRecord
	allAD       map[string][]fsm.AccountDataRecord // every room's, for rooms synced afresh
	newPeers    map[string]bool                    // users who came to share a room: their presence is sent
	ignored     map[string]bool                    // m.ignored_user_list
	pushRules   *fsm.PushRules                     // loaded for the first unread count
	countBudget int                                // events the unread counts may still examine
	toDevice    int64                              // last delivered to-device position when more remain
	bundle      *bundler                           // bundled aggregations, made on first use
}

func newSyncer(a *API, rt *fsm.ReadTx, p *syncParams, ephNow int64) *syncer {
	s := &syncer{a: a, rt: rt, p: p, f: p.filter, user: p.caller.UserID, since: -1, ephNow: ephNow,
		upto: fsm.MaxPosAt(rt.AppliedIndex()), events: map[string]*fsm.EventRecord{},
		vis: map[string]*roomVisibility{}}
	if p.since != nil {
		s.since = p.since.Pos
		// Ephemeral serials follow the clock, so one minted by another node
		// is comparable with this node's.
		s.ephSince = p.since.Eph
		if s.upto < s.since {
			s.upto = s.since
		}
	}
	return s
}

func (s *syncer) nextToken() syncToken {
	return syncToken{Pos: s.upto, Eph: s.ephNow, ToDevice: s.toDevice}
}

// event reads an event once per sync.
func (s *syncer) event(id string) *fsm.EventRecord {
	if ev, ok := s.events[id]; ok {
		return ev
	}
	ev, err := s.rt.Event(id)
	if err != nil {
		ev = nil
	}
	s.events[id] = ev
	return ev
}

func (s *syncer) render(rec *fsm.EventRecord) any {
	return s.f.renderEvent(s.rt, rec, s.p.caller, true, s.visibility(rec.RoomID).membershipAt(rec.Pos), nil)
}

// renderBundled is render with the event's bundled aggregations, which
// the spec asks for in a limited timeline (the client lacks the children).
func (s *syncer) renderBundled(rec *fsm.EventRecord) any {
	if s.bundle == nil {
		s.bundle = &bundler{rt: s.rt, viewer: s.p.caller, ignored: s.ignored, vis: s.visibility, stripRoom: true}
	}
	return s.f.renderEvent(s.rt, rec, s.p.caller, true, s.visibility(rec.RoomID).membershipAt(rec.Pos),
		func(ev *ClientEvent) { s.bundle.add(ev, rec) })
}

// rooms fills the join, invite, knock and leave sections.
func (s *syncer) rooms(resp *syncResponse) {
	s.myRooms = s.rt.SyncUserRooms(s.user)
	s.ignored = ignoredUsers(s.rt, s.user)
	s.globalAD, s.roomAD = s.rt.AccountDataSince(s.user, s.since)
	for roomID, m := range s.myRooms {
		if !s.f.Room.allowsRoom(roomID) {
			continue
		}
		switch m.Membership {
		case "join":
			if jr := s.joinedRoom(roomID, m); jr != nil {
				resp.Rooms.Join[roomID] = jr
			}
		case "invite", "knock":
			if ev := s.event(m.EventID); m.Membership == "invite" && ev != nil && s.ignored[ev.Sender] {
				continue // invites from ignored users are not sent
			}
			if sr := s.strippedRoom(roomID, m); sr != nil {
				if m.Membership == "invite" {
					resp.Rooms.Invite[roomID] = sr
				} else {
					resp.Rooms.Knock[roomID] = sr
				}
			}
		case "leave", "ban":
			if lr := s.leftRoom(roomID, m); lr != nil {
				resp.Rooms.Leave[roomID] = lr
			}
		}
	}
}

func (s *syncer) joinedRoom(roomID string, m fsm.MembershipRecord) *joinedRoom {
	fresh := s.since < 0 || (m.Pos > s.since && !s.wasJoinedAtSince(m))
	jr := &joinedRoom{
		State: eventList{Events: []any{}}, Timeline: syncTimeline{Events: []any{}},
		Ephemeral:   eventList{Events: s.ephemeralFor(roomID, fresh)},
		AccountData: eventList{Events: s.roomAccountData(roomID, fresh)},
	}
	changed := fresh || s.p.fullState || s.rt.RoomLastPos(roomID) > s.since || s.lateSince(roomID)
	if !changed {
		if len(jr.Ephemeral.Events) == 0 && len(jr.AccountData.Events) == 0 {
			return nil
		}
		jr.Timeline.PrevBatch = boundaryToken(s.since+1, s.ephNow)
		jr.Summary = &roomSummary{}
		s.fillUnread(jr, roomID, m)
		return jr
	}
	from := s.since
	var vis *roomVisibility
	if fresh {
		from = -1
		vis = s.visibility(roomID)
	} else if m.Pos > s.since {
		vis = s.visibility(roomID) // membership changed in the window
	}
	tl := s.timeline(roomID, from, s.upto, vis)
	if fresh && s.since >= 0 {
		// A room joined since the token: the client has none of its history,
		// so the timeline counts as limited, as Synapse marks it (Complement's
		// "Newly joined room has correct timeline in incremental sync").
		tl.limited = true
	}
	var stateIDs []string
	memberChanged := fresh
	if fresh || s.p.fullState {
		stateIDs = s.fullStateIDs(roomID, s.stateBefore(roomID, tl.start), tl)
		if !fresh {
			_, memberChanged = s.stateDelta(roomID, s.since, tl.start)
		}
	} else {
		var delta []string
		delta, memberChanged = s.stateDelta(roomID, s.since, tl.start)
		stateIDs = s.deltaStateIDs(roomID, delta, tl)
	}
	jr.State.Events = s.renderState(stateIDs)
	jr.Timeline = s.renderTimeline(tl, from)
	late := s.lateTimeline(roomID, from, tl)
	jr.Timeline.Events = append(jr.Timeline.Events, late...)
	jr.Summary = &roomSummary{}
	if memberChanged {
		members := s.roomMembers(roomID)
		jr.Summary = s.summaryFrom(roomID, members)
		s.noteNewMembers(members["join"], fresh)
	}
	if !fresh && !s.p.fullState && len(tl.recs) == 0 && len(late) == 0 && len(jr.State.Events) == 0 &&
		len(jr.Ephemeral.Events) == 0 && len(jr.AccountData.Events) == 0 {
		return nil
	}
	s.recordLazy(roomID, stateIDs, tl, fresh || s.p.fullState)
	s.fillUnread(jr, roomID, m)
	return jr
}

func (s *syncer) fillUnread(jr *joinedRoom, roomID string, m fsm.MembershipRecord) {
	jr.UnreadNotifications, jr.UnreadThreadNotifications = s.unreadCounts(roomID, m, s.f.Room.Timeline.UnreadThreadNotifications)
}

// wasJoinedAtSince reports whether the user was already joined at the since
// position, so a join-to-join change (a new display name) is not mistaken
// for a newly joined room.
func (s *syncer) wasJoinedAtSince(m fsm.MembershipRecord) bool {
	id := m.EventID
	for i := 0; id != "" && i < maxStateChain; i++ {
		ev := s.event(id)
		if ev == nil {
			return false
		}
		if ev.Pos <= s.since {
			return gjson.GetBytes(ev.PDU, "content.membership").Str == "join"
		}
		id = ev.PrevState
	}
	return false
}

func (s *syncer) leftRoom(roomID string, m fsm.MembershipRecord) *leftRoom {
	// Rooms left since the token always show, even once forgotten (so the
	// user's other devices learn of the leave: Complement's "Leave for
	// forgotten room shows up in v2 incremental /sync"); older ones only
	// when the filter asks for them in a full (initial or full_state) sync.
	fresh := s.since < 0 || s.p.fullState
	newlyLeft := s.since >= 0 && m.Pos > s.since
	if !newlyLeft && (!(fresh && s.f.Room.IncludeLeave) || s.rt.Forgotten(s.user, roomID)) {
		return nil
	}
	from := s.since
	if fresh {
		from = -1
	}
	tl := s.timeline(roomID, from, m.Pos, s.visibility(roomID))
	var stateIDs []string
	if fresh {
		stateIDs = s.fullStateIDs(roomID, s.stateBefore(roomID, tl.start), tl)
	} else {
		delta, _ := s.stateDelta(roomID, s.since, tl.start)
		stateIDs = s.deltaStateIDs(roomID, delta, tl)
	}
	return &leftRoom{
		State:       eventList{Events: s.renderState(stateIDs)},
		Timeline:    s.renderTimeline(tl, from),
		AccountData: eventList{Events: s.roomAccountData(roomID, fresh)},
	}
}

// maxTimelineScan bounds how many events one room's timeline may skip
// (filtered out or invisible) before it gives up and reports limited.
const maxTimelineScan = 500

type roomTimeline struct {
	recs    []*fsm.EventRecord // oldest first
	limited bool
	start   int64 // position of the oldest event, or the end when empty
	end     int64 // the boundary just after the newest position covered
}

// timeline collects the newest visible, filter-passing events with
// from < pos <= upto; vis nil means every event is visible.
func (s *syncer) timeline(roomID string, from, upto int64, vis *roomVisibility) roomTimeline {
	limit := s.f.timelineLimit()
	tf := &s.f.Room.Timeline
	var tl roomTimeline
	if vis != nil && vis.seesEverything() {
		vis = nil
	}
	if vis == nil && tf.passesAll() && len(s.ignored) == 0 {
		return s.plainTimeline(roomID, from, upto, limit)
	}
	scanned := 0
	s.rt.RoomEvents(roomID, upto+1, false, 0, func(rec *fsm.EventRecord) bool {
		if rec.Pos <= from {
			return false
		}
		if scanned++; scanned > limit+maxTimelineScan {
			tl.limited = true
			return false
		}
		if rec.Rejected || !tf.allowsEvent(rec) || (vis != nil && !vis.canSee(rec)) || hiddenByIgnore(s.ignored, rec) {
			return true
		}
		if len(tl.recs) >= limit {
			tl.limited = true
			return false
		}
		tl.recs = append(tl.recs, rec)
		s.events[rec.EventID] = rec
		return true
	})
	slices.Reverse(tl.recs)
	tl.start, tl.end = upto+1, upto+1
	if len(tl.recs) > 0 {
		tl.start = tl.recs[0].Pos
	}
	return tl
}

// plainTimeline is timeline when every event passes: it reads exactly the
// events it returns and tells "limited" from the stream keys alone.
func (s *syncer) plainTimeline(roomID string, from, upto int64, limit int) roomTimeline {
	var tl roomTimeline
	if limit > 0 {
		s.rt.RoomEvents(roomID, upto+1, false, limit, func(rec *fsm.EventRecord) bool {
			if rec.Pos <= from {
				return false
			}
			if !rec.Rejected {
				tl.recs = append(tl.recs, rec)
				s.events[rec.EventID] = rec
			}
			return true
		})
	}
	slices.Reverse(tl.recs)
	tl.start, tl.end = upto+1, upto+1
	if len(tl.recs) > 0 {
		tl.start = tl.recs[0].Pos
	}
	tl.limited = s.rt.RoomStreamHasBetween(roomID, from, tl.start)
	return tl
}

func (s *syncer) renderTimeline(tl roomTimeline, from int64) syncTimeline {
	out := syncTimeline{Events: make([]any, 0, len(tl.recs)), Limited: tl.limited}
	for _, rec := range tl.recs {
		if tl.limited {
			out.Events = append(out.Events, s.renderBundled(rec))
		} else {
			out.Events = append(out.Events, s.render(rec))
		}
	}
	switch {
	case from < 0 && !tl.limited:
		// A room synced afresh whose whole history fits: Synapse gives the
		// current position here, and Complement's TestGetRoomMembersAtPoint
		// reads the members "at" it (a point before the create event has
		// no members).
		out.PrevBatch = boundaryToken(tl.end, s.ephNow)
	case len(tl.recs) > 0:
		out.PrevBatch = boundaryToken(tl.start, s.ephNow)
	case from >= 0:
		out.PrevBatch = boundaryToken(from+1, s.ephNow)
	default:
		out.PrevBatch = boundaryToken(tl.start, s.ephNow)
	}
	return out
}
