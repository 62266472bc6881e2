package memsup

// memfd_create(2) on linux/amd64; Go 1.19's syscall package has no name
// for it (golang.org/x/sys does, but the SDK uses the standard library only).
const sysMemfdCreate = 319
