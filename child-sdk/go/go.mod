module memsup

go 1.19
