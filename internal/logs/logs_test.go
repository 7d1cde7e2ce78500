package logs

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T) (*Store, string) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.poll = 10 * time.Millisecond
	mux := http.NewServeMux()
	mux.Handle("GET /_sluice/logs/{id}", s)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/_sluice/logs/"
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func TestFollowStreamsUntilTheLogEnds(t *testing.T) {
	s, base := serve(t)
	w, err := s.Create("0a1b")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "first\n")
	got := make(chan string)
	go func() { _, body, _ := get(t, base+"0a1b?follow=true"); got <- body }()
	time.Sleep(50 * time.Millisecond)
	io.WriteString(w, "second\n")
	w.Close()
	select {
	case body := <-got:
		if body != "first\nsecond\n" {
			t.Fatalf("followed %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("following a closed log did not end")
	}
	code, body, h := get(t, base+"0a1b?offset=6")
	if code != 200 || body != "second\n" || h.Get("X-Sluice-Log-Complete") != "true" {
		t.Fatalf("from offset 6: %d %q %v", code, body, h)
	}
}

func TestUnknownAndInvalidIDs(t *testing.T) {
	_, base := serve(t)
	for _, id := range []string{"abc", "..%2F..%2Fetc%2Fpasswd", "x"} {
		if code, body, _ := get(t, base+id); code != 404 || !strings.Contains(body, "no log") {
			t.Fatalf("%s: %d %q", id, code, body)
		}
	}
	s, _ := Open(t.TempDir())
	if _, err := s.Create("../escape"); err == nil {
		t.Fatal("created a log outside the directory")
	}
}
