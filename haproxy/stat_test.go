package haproxy

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStatsCaptured(t *testing.T) {
	blue := Stat{Backend: "app", Server: "blue", Addr: "127.0.0.1:18091", Status: "UP",
		CheckStatus: "L7OK", CheckCode: 200, CheckDesc: "Layer7 check passed", Weight: 1, CheckFall: 2}
	green := Stat{Backend: "app", Server: "green", Addr: "127.0.0.1:18092", Status: "MAINT", Weight: 1}
	drained := Stat{Backend: "mixed", Server: "drained", Addr: "127.0.0.1:18092", Status: "DRAIN",
		CheckStatus: "L7OK", CheckCode: 200, CheckDesc: "Layer7 check passed", Weight: 1, CheckFall: 2}
	slow := Stat{Backend: "mixed", Server: "slow", Addr: "127.0.0.1:18093", Status: "UP",
		CheckStatus: "L7OK", CheckInProgress: true, CheckDesc: "Layer7 check passed", Weight: 1, CheckFall: 2}
	v6 := Stat{Backend: "mixed", Server: "v6", Addr: "[::1]:18095", Status: "DOWN",
		CheckStatus: "L4CON", CheckDesc: "Layer4 connection problem", LastCheck: "Connection refused", Weight: 1,
		CheckFall: 2}
	comma := Stat{Backend: "mixed", Server: "comma", Addr: "127.0.0.1:18083", Status: "DOWN",
		CheckStatus: "L7STS", CheckCode: 503, CheckDesc: "Layer7 wrong status", LastCheck: `Down, "really"`,
		Weight: 1, CheckFall: 2}
	nocheck := Stat{Backend: "mixed", Server: "nocheck", Addr: "127.0.0.1:18096", Status: "no check", Weight: 1}

	tests := []struct {
		file string
		want []Stat
	}{
		{"stat_all.csv", []Stat{blue, green, drained, slow,
			{Backend: "mixed", Server: "flappy", Addr: "127.0.0.1:18094", Status: "UP 2/3",
				CheckStatus: "L4CON", CheckDesc: "Layer4 connection problem", LastCheck: "Connection refused", Weight: 1,
				CheckFall: 3},
			v6, comma, nocheck}},
		{"stat_app.csv", []Stat{blue, green}},
		{"stat_mixed_rising.csv", []Stat{drained, slow,
			{Backend: "mixed", Server: "flappy", Addr: "127.0.0.1:18094", Status: "DOWN 1/2",
				CheckStatus: "L7OK", CheckCode: 200, CheckDesc: "Layer7 check passed", Weight: 1, CheckFall: 3},
			v6, comma, nocheck}},
		{"stat_busy_load.csv", []Stat{
			{Backend: "busy", Server: "slow503", Addr: "127.0.0.1:18093", Status: "no check", Weight: 1,
				Scur: 2, Stot: 2},
			{Backend: "busy", Server: "gone", Addr: "127.0.0.1:18097", Status: "MAINT", Weight: 1}}},
		{"stat_busy_done.csv", []Stat{
			{Backend: "busy", Server: "slow503", Addr: "127.0.0.1:18093", Status: "no check", Weight: 1,
				Stot: 6, Hrsp5xx: 6},
			{Backend: "busy", Server: "gone", Addr: "127.0.0.1:18097", Status: "MAINT", Weight: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseStats(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("parseStats: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range tt.want {
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseStatsColumnsByName(t *testing.T) {
	text := "# type,svname,future,status,pxname,check_status,hrsp_5xx,qcur,scur,\n" +
		"2,green,x,UP,app,* L7STS,12,3,4,\n" +
		"1,BACKEND,x,UP,app,,12,0,4,\n\n"
	got, err := parseStats(text)
	if err != nil {
		t.Fatalf("parseStats: %v", err)
	}
	want := []Stat{{Backend: "app", Server: "green", Status: "UP", CheckStatus: "L7STS",
		CheckInProgress: true, Hrsp5xx: 12, Qcur: 3, Scur: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseStatsInvalid(t *testing.T) {
	tests := []struct {
		name, text, wantErr string
	}{
		{"empty", "", "invalid format"},
		{"error response", "No such proxy.\n\n", "invalid format"},
		{"missing column", "# pxname,svname,status\napp,blue,UP\n", "header lacks columns"},
		{"short row", "# pxname,svname,status,type,check_status,scur,qcur,hrsp_5xx,\napp,blue,UP\n", "fields"},
		{"not a number", "# pxname,svname,status,type,check_status,scur,qcur,hrsp_5xx,\n" +
			"app,blue,UP,2,L7OK,many,0,0,\n", "scur"},
		{"bad quoting", "# pxname,svname,status,type,check_status,scur,qcur,hrsp_5xx,\n" +
			"app,blue,\"UP,2,L7OK,0,0,0,\n", "invalid CSV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseStats(tt.text)
			if err == nil {
				t.Fatal("parseStats returned no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}
