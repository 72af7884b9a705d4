package plan

import (
	"strings"
	"syscall"
)

// errnoTable maps errno names to values. The first name listed for a value
// is its canonical name; later names with the same value are aliases that
// are accepted on input only.
var errnoTable = []struct {
	name  string
	errno syscall.Errno
}{
	{"EIO", syscall.EIO},
	{"ENOSPC", syscall.ENOSPC},
	{"EDQUOT", syscall.EDQUOT},
	{"EROFS", syscall.EROFS},
	{"EAGAIN", syscall.EAGAIN},
	{"EWOULDBLOCK", syscall.EWOULDBLOCK}, // alias of EAGAIN
	{"EACCES", syscall.EACCES},
	{"EPERM", syscall.EPERM},
	{"ENOENT", syscall.ENOENT},
	{"EBUSY", syscall.EBUSY},
	{"EINTR", syscall.EINTR},
	{"ENXIO", syscall.ENXIO},
	{"EREMOTEIO", syscall.EREMOTEIO},
	{"EFBIG", syscall.EFBIG},
	{"ETIMEDOUT", syscall.ETIMEDOUT},
	{"EEXIST", syscall.EEXIST},
	{"EBADF", syscall.EBADF},
	{"EINVAL", syscall.EINVAL},
	{"ENOMEM", syscall.ENOMEM},
	{"ENFILE", syscall.ENFILE},
	{"EMFILE", syscall.EMFILE},
	{"ENOTDIR", syscall.ENOTDIR},
	{"EISDIR", syscall.EISDIR},
	{"ENOTEMPTY", syscall.ENOTEMPTY},
	{"ENAMETOOLONG", syscall.ENAMETOOLONG},
	{"ELOOP", syscall.ELOOP},
	{"EXDEV", syscall.EXDEV},
	{"ENODEV", syscall.ENODEV},
	{"ENOLCK", syscall.ENOLCK},
	{"EDEADLK", syscall.EDEADLK},
	{"EDEADLOCK", syscall.EDEADLOCK}, // alias of EDEADLK
	{"ENOSYS", syscall.ENOSYS},
	{"EOPNOTSUPP", syscall.EOPNOTSUPP},
	{"ENOTSUP", syscall.ENOTSUP}, // alias of EOPNOTSUPP
	{"ENODATA", syscall.ENODATA},
	{"ESTALE", syscall.ESTALE},
	{"ENOTCONN", syscall.ENOTCONN},
	{"ECONNRESET", syscall.ECONNRESET},
	{"ECONNABORTED", syscall.ECONNABORTED},
	{"ECANCELED", syscall.ECANCELED},
	{"EOVERFLOW", syscall.EOVERFLOW},
	{"ERANGE", syscall.ERANGE},
	{"EPIPE", syscall.EPIPE},
	{"ESPIPE", syscall.ESPIPE},
	{"ETXTBSY", syscall.ETXTBSY},
	{"EMLINK", syscall.EMLINK},
	{"EBADMSG", syscall.EBADMSG},
	{"EILSEQ", syscall.EILSEQ},
	{"ENOMEDIUM", syscall.ENOMEDIUM},
	{"EUCLEAN", syscall.EUCLEAN},
	{"EHOSTDOWN", syscall.EHOSTDOWN},
	{"ENOBUFS", syscall.ENOBUFS},
	{"ENOTTY", syscall.ENOTTY},
	{"EFAULT", syscall.EFAULT},
}

var (
	errnoByName = map[string]syscall.Errno{}
	nameByErrno = map[syscall.Errno]string{}
)

func init() {
	for _, e := range errnoTable {
		if _, dup := errnoByName[e.name]; dup {
			panic("plan: duplicate errno name " + e.name)
		}
		errnoByName[e.name] = e.errno
		if _, ok := nameByErrno[e.errno]; !ok {
			nameByErrno[e.errno] = e.name
		}
	}
}

// ParseErrno returns the errno named name (case-insensitive, e.g. "eio" or
// "ENOSPC"); ok is false for a name not in the table.
func ParseErrno(name string) (errno syscall.Errno, ok bool) {
	errno, ok = errnoByName[strings.ToUpper(name)]
	return errno, ok
}

// ErrnoName returns the canonical upper-case name of errno ("EIO"), or ""
// when errno is not in the table.
func ErrnoName(errno syscall.Errno) string {
	return nameByErrno[errno]
}

// ErrnoNames returns every accepted errno name, canonical names and aliases,
// in table order.
func ErrnoNames() []string {
	names := make([]string, len(errnoTable))
	for i, e := range errnoTable {
		names[i] = e.name
	}
	return names
}
