package fsm

import (
	"encoding/json"
	"strings"
	"unicode"
)

// OpClusterRemoveNode records that a Raft server was removed for good, so
// that the leader's reconciliation of gossip members into Raft voters never
// adds it back, whichever node leads.
const OpClusterRemoveNode = "cluster.remove_node"

// bClusterRemoved holds the tombstones: node ID -> RemovedNode.
var bClusterRemoved = []byte("cluster_removed")

// RemoveNodeCmd is the payload of OpClusterRemoveNode.
type RemoveNodeCmd struct {
	NodeID string `json:"node_id"`
}

// RemovedNode is one tombstone.
type RemovedNode struct {
	NodeID    string `json:"node_id"`
	RemovedTS int64  `json:"removed_ts"` // proposer's clock, unix ms
}

// maxNodeIDLen bounds a node ID in a tombstone (node IDs come from config).
const maxNodeIDLen = 255

func init() {
	register(OpClusterRemoveNode, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[RemoveNodeCmd](cmd)
		if err != nil {
			return nil, err
		}
		if err := checkNodeID(c.NodeID); err != nil {
			return nil, err
		}
		// Removing twice keeps the first tombstone: a retry changes nothing.
		if w.IsNodeRemoved(c.NodeID) {
			return nil, nil
		}
		return nil, w.putJSON(bClusterRemoved, []byte(c.NodeID), RemovedNode{NodeID: c.NodeID, RemovedTS: cmd.TS})
	})
}

func checkNodeID(id string) error {
	switch {
	case id == "":
		return errBadRequest("node_id is required")
	case len(id) > maxNodeIDLen:
		return errBadRequest("node_id is longer than %d bytes", maxNodeIDLen)
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return errBadRequest("node_id must not contain spaces or control characters")
	}
	return nil
}

// IsNodeRemoved reports whether the node was removed from the cluster for good.
func (r *ReadTx) IsNodeRemoved(nodeID string) bool {
	return nodeID != "" && r.get(bClusterRemoved, []byte(nodeID)) != nil
}

// RemovedNodes lists the tombstones in node ID order.
func (r *ReadTx) RemovedNodes() []RemovedNode {
	var out []RemovedNode
	r.scan(bClusterRemoved, nil, func(k, v []byte) bool {
		rec := RemovedNode{NodeID: string(k)}
		_ = json.Unmarshal(v, &rec)
		out = append(out, rec)
		return true
	})
	return out
}
