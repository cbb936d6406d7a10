package haproxy

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Stat is one server row of `show stat`.
type Stat struct {
	Backend string // pxname
	Server  string // svname
	// Addr is the server's address and port, with IPv6 addresses in
	// brackets: "127.0.0.1:8080", "[::1]:8080".
	Addr string
	// Status is the status column as HAProxy prints it: "UP", "DOWN",
	// "DRAIN", "MAINT", "no check", or a transition such as "UP 1/3" (up,
	// one failed check of three allowed) or "DOWN 1/2" (down, one good check
	// of two needed).
	Status string
	// CheckStatus is the last finished check's status, such as "L7OK",
	// "L4CON" or "L7STS", without the "* " prefix HAProxy adds while the next
	// check runs. It is empty for servers without checks or in maintenance.
	CheckStatus string
	// CheckInProgress reports whether the check_status column had the "* "
	// prefix.
	CheckInProgress bool
	CheckCode       int    // HTTP status of the last layer 7 check, or 0
	CheckDesc       string // HAProxy's description of CheckStatus, "Layer7 check passed"
	// LastCheck is the last check's detail (last_chk), for example the HTTP
	// reason phrase. It comes from the server, so it is untrusted text.
	LastCheck string
	Weight    int

	Scur    int   // current sessions
	Qcur    int   // requests queued for this server
	Stot    int64 // sessions since start
	Econ    int64 // failed connection attempts
	Eresp   int64 // response errors
	Hrsp5xx int64 // HTTP responses with a 5xx status
	// CheckFall is the server's `fall`: how many failed checks take it
	// down. 0 for a server without checks.
	CheckFall int
}

// Stats returns the server rows of backend from `show stat <backend> 4 -1`.
// An unknown backend returns an error wrapping ErrNoSuchBackend.
func (c *Client) Stats(ctx context.Context, backend string) ([]Stat, error) {
	if err := validateName("backend", backend); err != nil {
		return nil, err
	}
	// Type 4 selects server rows; -1 selects every server of the proxy.
	cmd := "show stat " + backend + " 4 -1"
	response, err := c.Command(ctx, cmd)
	if err != nil {
		return nil, err
	}
	all, err := parseStats(response)
	if err != nil {
		return nil, fmt.Errorf("reading `%s` from HAProxy admin socket %s: %w", cmd, c.socket, err)
	}
	stats := make([]Stat, 0, len(all))
	for _, s := range all {
		if s.Backend == backend {
			stats = append(stats, s)
		}
	}
	return stats, nil
}

// parseStats parses the CSV response to `show stat` and returns its server
// rows, leaving out FRONTEND, BACKEND and listener rows. It finds columns by
// the header line "# pxname,svname,...", so columns that a later HAProxy
// adds do not matter. Fields with commas or quotes are quoted as in RFC 4180.
func parseStats(text string) ([]Stat, error) {
	header, body, _ := strings.Cut(text, "\n")
	if !strings.HasPrefix(header, "# ") {
		return nil, fmt.Errorf("invalid format: the first line is %q, expected a header starting with \"# \"",
			firstLine(text))
	}
	names, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(header, "# "))).Read()
	if err != nil {
		return nil, fmt.Errorf("invalid header: %w", err)
	}
	cols := columnIndex(names)
	required := []string{"pxname", "svname", "status", "type", "check_status", "scur", "qcur", "hrsp_5xx"}
	if missing := cols.missing(required); len(missing) > 0 {
		return nil, fmt.Errorf("invalid format: header lacks columns %s", strings.Join(missing, ", "))
	}

	reader := csv.NewReader(strings.NewReader(body))
	reader.FieldsPerRecord = -1
	var stats []Stat
	for {
		fields, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return stats, nil
		}
		if err != nil {
			return nil, fmt.Errorf("invalid CSV: %w", err)
		}
		line, _ := reader.FieldPos(0)
		if len(fields) < cols.width(required) {
			return nil, fmt.Errorf("line %d: %d fields, but the header needs at least %d",
				line+1, len(fields), cols.width(required))
		}
		r := row{cols: cols, fields: fields}
		// Type 2 is a server; 0, 1 and 3 are frontend, backend and listener.
		if r.str("type") != "2" {
			continue
		}
		s := parseStatRow(&r)
		if r.err != nil {
			return nil, fmt.Errorf("line %d, server %s/%s: %w", line+1, s.Backend, s.Server, r.err)
		}
		stats = append(stats, s)
	}
}

func parseStatRow(r *row) Stat {
	s := Stat{
		Backend:   r.str("pxname"),
		Server:    r.str("svname"),
		Addr:      r.str("addr"),
		Status:    r.str("status"),
		CheckCode: r.int("check_code"),
		CheckDesc: r.str("check_desc"),
		LastCheck: r.str("last_chk"),
		Weight:    r.int("weight"),
		Scur:      r.int("scur"),
		Qcur:      r.int("qcur"),
		Stot:      r.int64("stot"),
		Econ:      r.int64("econ"),
		Eresp:     r.int64("eresp"),
		Hrsp5xx:   r.int64("hrsp_5xx"),
		CheckFall: r.int("check_fall"),
	}
	s.CheckStatus, s.CheckInProgress = strings.CutPrefix(r.str("check_status"), "* ")
	return s
}
