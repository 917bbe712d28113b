#include "plugin/elf_symbols.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace eventflow::plugin {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
struct ElfDeleter {
  void operator()(Elf* e) const { elf_end(e); }
};

Error fail(const std::string& what) { return makeError(what); }

}  // namespace

Expected<bool> exportsDynamicSymbol(const std::string& path, const std::string& name) {
  if (elf_version(EV_CURRENT) == EV_NONE) return fail(std::string("libelf: ") + elf_errmsg(-1));
  const Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) return fail("cannot open: " + std::string(std::strerror(errno)));
  const std::unique_ptr<Elf, ElfDeleter> elf(elf_begin(file.fd, ELF_C_READ_MMAP, nullptr));
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) return fail("not an ELF file");
  GElf_Ehdr header;
  if (gelf_getehdr(elf.get(), &header) == nullptr || header.e_type != ET_DYN)
    return fail("not a shared library (ELF type is not ET_DYN)");

  bool found_table = false;
  for (Elf_Scn* section = elf_nextscn(elf.get(), nullptr); section != nullptr;
       section = elf_nextscn(elf.get(), section)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(section, &shdr) == nullptr || shdr.sh_type != SHT_DYNSYM) continue;
    found_table = true;
    Elf_Data* data = elf_getdata(section, nullptr);
    if (data == nullptr || shdr.sh_entsize == 0) return fail("a damaged dynamic symbol table");
    const std::size_t count = shdr.sh_size / shdr.sh_entsize;
    for (std::size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) return fail("a damaged dynamic symbol table");
      // What dlsym() could return: defined here, global or weak, default or
      // protected visibility.
      if (sym.st_shndx == SHN_UNDEF || GELF_ST_BIND(sym.st_info) == STB_LOCAL) continue;
      const auto visibility = GELF_ST_VISIBILITY(sym.st_other);
      if (visibility != STV_DEFAULT && visibility != STV_PROTECTED) continue;
      const char* symbol = elf_strptr(elf.get(), shdr.sh_link, sym.st_name);
      if (symbol != nullptr && name == symbol) return true;
    }
  }
  if (!found_table) return fail("no dynamic symbol table (.dynsym); not a shared library built to be loaded");
  return false;
}

}  // namespace eventflow::plugin
