package fsm

import (
	"sync"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// pduCache keeps parsed auth events between applies: the same few state
// events (create, power levels, members) authorise every message of a room.
// It only saves parsing; a hit returns exactly what the store holds.
type pduCache struct {
	mu    sync.Mutex
	items map[id.EventID]*pdu.PDU
}

const pduCacheMax = 4096

func newPDUCache() *pduCache { return &pduCache{items: map[id.EventID]*pdu.PDU{}} }

func (c *pduCache) get(eid id.EventID) *pdu.PDU {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items[eid]
}

func (c *pduCache) put(eid id.EventID, p *pdu.PDU) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= pduCacheMax {
		// Dropping everything is crude but bounded and rare.
		c.items = map[id.EventID]*pdu.PDU{}
	}
	c.items[eid] = p
}

func (c *pduCache) forget(eid id.EventID) {
	c.mu.Lock()
	delete(c.items, eid)
	c.mu.Unlock()
}

func (c *pduCache) clear() {
	c.mu.Lock()
	c.items = map[id.EventID]*pdu.PDU{}
	c.mu.Unlock()
}
