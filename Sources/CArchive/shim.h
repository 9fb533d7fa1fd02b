#ifndef SEED_CARCHIVE_SHIM_H
#define SEED_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
