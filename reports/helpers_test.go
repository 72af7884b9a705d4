package reports

import "github.com/sqlchaos/sqlchaos/history"

func historyReturn(t int64) history.Event {
	return history.Event{T: t, Proc: "cli", Pid: 1, Type: history.TypeReturn, Op: "list"}
}
