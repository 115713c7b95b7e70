package cluster

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/hashicorp/raft"
)

// Status is what GET /_ganglion/v1/status reports: nothing secret, enough
// for scripts and load balancers.
type Status struct {
	NodeID          string   `json:"node_id"`
	State           string   `json:"state"`
	LeaderID        string   `json:"leader_id"`
	LeaderClientURL string   `json:"leader_client_url"`
	AppliedIndex    uint64   `json:"applied_index"`
	CommitIndex     uint64   `json:"commit_index"`
	LastLogIndex    uint64   `json:"last_log_index"`
	Members         []Member `json:"members"`
	// StoreIndexAtStart, AppliedSinceStart and SkippedSinceStart show that a
	// restart replays only what the store lacks.
	StoreIndexAtStart uint64 `json:"store_index_at_start"`
	AppliedSinceStart uint64 `json:"applied_since_start"`
	SkippedSinceStart uint64 `json:"skipped_since_start"`
}

// Member is one Raft server.
type Member struct {
	NodeID    string `json:"node_id"`
	ClientURL string `json:"client_url"`
	RaftAddr  string `json:"raft_addr"`
	Voter     bool   `json:"voter"`
	Alive     bool   `json:"alive"`
}

// Status collects the node's view of the cluster.
func (n *Node) Status() Status {
	_, leaderID := n.raft.LeaderWithID()
	stats := n.raft.Stats()
	st := Status{
		NodeID:   n.cfg.Node.ID,
		State:    stateName(n.raft.State()),
		LeaderID: string(leaderID),
		// Raft's applied index counts no-op and barrier entries, which
		// never reach the store.
		AppliedIndex: max(n.store.AppliedIndex(), n.raft.AppliedIndex()),
		LastLogIndex: n.raft.LastIndex(),
		Members:      []Member{},
	}
	st.CommitIndex, _ = strconv.ParseUint(stats["commit_index"], 10, 64)
	st.StoreIndexAtStart, st.AppliedSinceStart, st.SkippedSinceStart = n.fsm.Counters()
	if leaderID != "" {
		st.LeaderClientURL, _, _ = n.memberView(string(leaderID))
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			m := Member{NodeID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter}
			m.ClientURL, m.Alive, _ = n.memberView(string(s.ID))
			st.Members = append(st.Members, m)
		}
	}
	return st
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Follower:
		return "follower"
	}
	return "shutdown"
}

// StatusHandler serves GET /_ganglion/v1/status.
func (n *Node) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"method not allowed"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(n.Status())
	})
}
