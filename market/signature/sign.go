package signature

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/vmarket/vmarket/market/wallet"
)

// SetIdentity sets the headers the V Cloud client sends on every request,
// signed or not: x-sdk-time (now, unix seconds), User-Agent and address.
// An empty address is sent empty, as the client does without a wallet.
func SetIdentity(req *http.Request, address string, now time.Time) {
	req.Header.Set(HeaderTime, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderUserAgent, UserAgent)
	req.Header.Set(HeaderAddress, address)
}

// Sign signs req with w exactly as the Python client does: SetIdentity's
// headers, then public-key (base58) and signature (base64 of the XEdDSA
// signature of the request's message). body must be the exact bytes req
// will send (nil for none, which is signed as "{}"); the path and query
// signed are req.URL.RequestURI(), what Go's client sends.
func Sign(req *http.Request, body []byte, w *wallet.Wallet, now time.Time) {
	SetIdentity(req, w.Address(), now)
	req.Header.Set(HeaderPublicKey, w.PublicKey().String())
	msg := RequestFromHTTP(req, body).Message()
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(w.Keys.Sign(msg[:])))
}
