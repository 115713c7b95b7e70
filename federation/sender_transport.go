package federation

import (
	"context"
	"encoding/json"
	"net/http"

	mfed "maunium.net/go/mautrix/federation"
)

// clientTransactions sends the sender's transactions with the signing
// client: PUT /_matrix/federation/v1/send/{txnId}.
type clientTransactions struct{ c *Client }

// TransactionClient is the TransactionSender of a running server.
func (a *API) TransactionClient() TransactionSender { return clientTransactions{c: a.client} }

func (t clientTransactions) SendTransaction(ctx context.Context, destination, txnID string, body []byte) error {
	_, _, err := t.c.Do(ctx, mfed.RequestParams{
		ServerName: destination, Method: http.MethodPut, Authenticate: true,
		Path:        mfed.URLPath{"v1", "send", txnID},
		RequestJSON: json.RawMessage(body),
	})
	return err
}
