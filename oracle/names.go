package oracle

// The checker names, as constants so that an expectation naming a checker
// is checked by the compiler (Expect{Fail: []string{oracle.ErrorFidelity}}).
const (
	JournalMode   = "journal-mode"
	Durability    = "durability"
	Prefix        = "prefix"
	Resurrection  = "resurrection"
	Structure     = "structure"
	PageCount     = "page-count"
	Sidecars      = "sidecars"
	ErrorFidelity = "error-fidelity"
	Workers       = "workers"
	Zombies       = "zombies"
	Liveness      = "liveness"
	Silent        = "silent"
)
