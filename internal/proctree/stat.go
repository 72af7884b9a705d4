package proctree

import (
	"os"
	"strconv"
	"strings"
)

// Stat is what /proc/<pid>/stat says about a process.
type Stat struct {
	Pid   int
	State byte // R, S, D, Z, T, ...
	Ppid  int
	Pgrp  int
	// Start is the process's start time in clock ticks since boot: with the
	// pid it names one process for ever (a pid alone may be reused).
	Start uint64
}

// Zombie reports whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat parses /proc/<pid>/stat. ok is false when the process does not
// exist (or its stat cannot be parsed).
func ReadStat(pid int) (s Stat, ok bool) {
	if pid <= 0 {
		return s, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, false
	}
	return parseStat(pid, string(b))
}

// parseStat parses one stat line: the fields after the parenthesised
// command name (which may itself hold spaces and parentheses) start with
// field 3, the state.
func parseStat(pid int, line string) (s Stat, ok bool) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return s, false
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state), f[1] ppid, f[2] pgrp, f[19] starttime (22).
	if len(f) < 20 || len(f[0]) == 0 {
		return s, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	start, err3 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return s, false
	}
	return Stat{Pid: pid, State: f[0][0], Ppid: ppid, Pgrp: pgrp, Start: start}, true
}

// Same reports whether pid still names the process that started at start
// (and has not been reaped; a zombie counts).
func Same(pid int, start uint64) bool {
	s, ok := ReadStat(pid)
	return ok && s.Start == start
}

// Alive reports whether pid names the process that started at start and it
// has not exited (a zombie is not alive).
func Alive(pid int, start uint64) bool {
	s, ok := ReadStat(pid)
	return ok && s.Start == start && !s.Zombie()
}

// Children lists the processes whose parent is ppid, from /proc.
func Children(ppid int) []Stat {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := ReadStat(pid); ok && s.Ppid == ppid {
			out = append(out, s)
		}
	}
	return out
}

// selfStart is this process's start time (0 if unknown).
func selfStart() uint64 {
	s, _ := ReadStat(os.Getpid())
	return s.Start
}
