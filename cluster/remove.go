package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/internal/matrixhttp"
)

// ErrNotLeader answers an admin change sent to a node that does not lead.
var ErrNotLeader = &fsm.Error{Status: http.StatusServiceUnavailable, Errcode: "M_UNKNOWN", Message: "not the leader"}

// membersPath is the route prefix of RemoveNodeHandler.
const membersPath = "/_ganglion/v1/members/"

// RemoveNode removes a server from the cluster for good: a tombstone in the
// FSM keeps the leader's reconciliation from adding it back, then Raft drops
// it from the configuration. It must run on the leader. Removing a node
// twice succeeds; removing the last voter or an ID that neither Raft nor
// gossip knows is refused.
func (n *Node) RemoveNode(ctx context.Context, nodeID string) error {
	if nodeID == "" {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "node_id is required")
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	f := n.raft.GetConfiguration()
	if err := waitFuture(ctx, f); err != nil {
		return translate(err)
	}
	var target *raft.Server
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if string(s.ID) == nodeID {
			target = &s
		}
	}
	if target == nil {
		if n.isNodeRemoved(nodeID) {
			return nil
		}
		if _, _, known := n.memberView(nodeID); !known {
			return fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no node %q in the cluster", nodeID)
		}
		// Known to gossip only: the tombstone keeps it from being added.
	} else if target.Suffrage == raft.Voter && voters == 1 {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "cannot remove %q: it is the last voter", nodeID)
	}
	if _, _, err := n.Propose(ctx, fsm.OpClusterRemoveNode, fsm.RemoveNodeCmd{NodeID: nodeID}); err != nil {
		return err
	}
	if target == nil {
		return nil
	}
	n.log.Info("removing server from the cluster", "node_id", nodeID, "raft_addr", target.Address)
	if err := waitFuture(ctx, n.raft.RemoveServer(target.ID, 0, applyTimeout)); err != nil {
		return translate(err)
	}
	return nil
}

// AdminToken is the bearer token of the cluster admin endpoints: hex of
// HMAC-SHA256 keyed with the gossip key over "ganglion-admin". Every node of
// a cluster shares the key, so any of them (or the CLI) can compute it.
func AdminToken(cfg *config.Config) (string, error) {
	if cfg.Cluster.GossipKey == "" {
		return "", errors.New("cluster.gossip_key is not set: the admin endpoints are disabled")
	}
	key, err := base64.StdEncoding.DecodeString(cfg.Cluster.GossipKey)
	if err != nil {
		return "", errors.New("cluster.gossip_key is not valid base64")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("ganglion-admin"))
	return hex.EncodeToString(mac.Sum(nil)), nil
}

// RemoveNodeHandler serves DELETE /_ganglion/v1/members/{node_id}, authorised
// by "Authorization: Bearer <AdminToken>". It answers 200 {"removed": id}
// or a Matrix error; on a follower, 503 "not the leader".
func (n *Node) RemoveNodeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete {
			writeClusterError(w, fsm.Errorf(http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method not allowed"))
			return
		}
		if err := n.checkAdmin(r); err != nil {
			writeClusterError(w, err)
			return
		}
		nodeID := nodeIDParam(r)
		if err := n.RemoveNode(r.Context(), nodeID); err != nil {
			writeClusterError(w, err)
			return
		}
		matrixhttp.WriteJSON(w, http.StatusOK, map[string]string{"removed": nodeID})
	})
}

func (n *Node) checkAdmin(r *http.Request) error {
	want, err := AdminToken(n.cfg)
	if err != nil {
		return fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "%v", err)
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return fsm.Errorf(http.StatusUnauthorized, "M_MISSING_TOKEN", "missing admin token")
	}
	if !hmac.Equal([]byte(strings.TrimSpace(got)), []byte(want)) {
		return fsm.Errorf(http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "unknown admin token")
	}
	return nil
}

// nodeIDParam reads {node_id} from a ServeMux pattern, or else from the
// path after membersPath (for routers that do not set path values).
func nodeIDParam(r *http.Request) string {
	if id := r.PathValue("node_id"); id != "" {
		return id
	}
	rest := r.URL.EscapedPath()
	if i := strings.Index(rest, membersPath); i >= 0 {
		rest = rest[i+len(membersPath):]
	} else {
		return ""
	}
	id, err := url.PathUnescape(strings.TrimSuffix(rest, "/"))
	if err != nil {
		return ""
	}
	return id
}

func writeClusterError(w http.ResponseWriter, err error) {
	var fe *fsm.Error
	switch {
	case errors.As(err, &fe):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		fe = fsm.Errorf(http.StatusServiceUnavailable, "M_UNKNOWN", "timed out; the change may still apply")
	default:
		fe = fsm.Errorf(http.StatusInternalServerError, "M_UNKNOWN", "%v", err)
	}
	matrixhttp.WriteError(w, fe.Status, fe.Errcode, fe.Message)
}
