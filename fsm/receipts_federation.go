package fsm

import "encoding/json"

// federateReceipt queues a local user's public read receipt for the other
// servers with joined members in the room (an m.receipt EDU). Receipts that
// arrived over federation (ReceiptPut.Remote) are not sent on.
func (w *WriteTx) federateReceipt(c *ReceiptPut, m ReceiptMark, ts int64) error {
	if c.Remote || m.Type != ReceiptRead {
		return nil
	}
	dests := w.JoinedServers(c.RoomID, ServerOfUser(c.UserID))
	if len(dests) == 0 {
		return nil
	}
	data := map[string]any{"ts": ts}
	if m.ThreadID != "" {
		data["thread_id"] = m.ThreadID
	}
	edu, err := json.Marshal(map[string]any{"edu_type": "m.receipt", "content": map[string]any{
		c.RoomID: map[string]any{"m.read": map[string]any{c.UserID: map[string]any{
			"data": data, "event_ids": []string{m.EventID}}}}}})
	if err != nil {
		return err
	}
	for _, d := range dests {
		if err := w.EnqueueFederationEDU(d, edu); err != nil {
			return err
		}
	}
	return nil
}
