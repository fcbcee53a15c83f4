// Command receiver is the HTTP receiver of the e2e notification tests: it
// records every request it gets (method, path with query, headers, body)
// and answers 200, or the status a path under /status/<code>/ asks for.
// GET /requests lists what it recorded, as JSON, oldest first; that path
// itself is not recorded.
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

type request struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Header map[string][]string `json:"header"`
	Body   string              `json:"body"`
	Time   time.Time           `json:"time"`
}

func main() {
	var mu sync.Mutex
	var requests []request
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/requests" && r.Method == http.MethodGet {
			mu.Lock()
			defer mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(requests)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		requests = append(requests, request{Method: r.Method, URI: r.URL.RequestURI(), Header: r.Header, Body: string(body), Time: time.Now().UTC()})
		mu.Unlock()
		status := http.StatusOK
		if rest, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			if code, err := strconv.Atoi(strings.SplitN(rest, "/", 2)[0]); err == nil && code >= 200 && code < 600 {
				status = code
			}
		}
		w.WriteHeader(status)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
