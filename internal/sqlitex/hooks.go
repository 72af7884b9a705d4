package sqlitex

// Set by mattn.go when the binary is built with cgo.
var (
	mattnSQLName string
	mattnCode    func(error) int
)
