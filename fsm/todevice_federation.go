package fsm

import (
	"encoding/json"
	"strconv"
)

// federateToDevice queues an m.direct_to_device EDU for each other server
// whose users the message is for. Messages that arrived over federation
// (ToDeviceSend.Remote) are only delivered here.
func (w *WriteTx) federateToDevice(c *ToDeviceSend, pos int64) error {
	if c.Remote {
		return nil
	}
	ours := ServerOfUser(c.Sender)
	byServer := map[string]map[string]map[string]json.RawMessage{}
	var servers []string
	for _, userID := range sortedStringKeys(c.Messages) {
		s := ServerOfUser(userID)
		if s == "" || s == ours || validDestination(s) != nil {
			continue // not a server: nothing to deliver
		}
		if byServer[s] == nil {
			byServer[s] = map[string]map[string]json.RawMessage{}
			servers = append(servers, s)
		}
		byServer[s][userID] = c.Messages[userID]
	}
	for _, s := range servers {
		edu, err := json.Marshal(map[string]any{"edu_type": "m.direct_to_device", "content": map[string]any{
			"sender": c.Sender, "type": c.Type, "message_id": strconv.FormatInt(pos, 36), "messages": byServer[s]}})
		if err != nil {
			return err
		}
		if err := w.EnqueueFederationEDU(s, edu); err != nil {
			return err
		}
	}
	return nil
}
