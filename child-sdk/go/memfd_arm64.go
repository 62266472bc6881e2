package memsup

// memfd_create(2) on linux/arm64 (the generic syscall table).
const sysMemfdCreate = 279
