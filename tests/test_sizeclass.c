// test_sizeclass: the generated size-class tables obey Go's rules.
#include "internals.h"
#include "test.h"

int main(void) {
  CHECK(GM_NUM_SIZE_CLASSES == 68);
  CHECK(class_to_size[1] == 8 && class_to_size[GM_NUM_SIZE_CLASSES - 1] == 32768);
  for (int c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
    uint32_t size = class_to_size[c];
    size_t span = (size_t)class_to_npages[c] * GM_PAGE_SIZE;
    CHECKF(c == 1 || size > class_to_size[c - 1], "class %d not increasing", c);
    CHECKF(size % 8 == 0, "class %d size %u not 8-aligned", c, size);
    CHECKF(class_to_nelems[c] == span / size, "class %d nelems", c);
    CHECKF(span % size <= span / 8, "class %d tail waste %zu > 12.5%%", c, span % size);
    CHECKF(class_to_nelems[c] <= GM_MAX_OBJS_PER_SPAN, "class %d too many objects", c);
    // The reciprocal gives the exact index for every object start and every
    // byte inside the span (interior offsets map to their object).
    int bad = 0;
    for (size_t off = 0; off < span; off++) {
      uint32_t idx = (uint32_t)(((uint64_t)off * class_to_divmul[c]) >> 32);
      if (idx != off / size)
        bad++;
    }
    CHECKF(bad == 0, "class %d divmul wrong for %d offsets", c, bad);
  }
  // size -> class: the smallest class that fits, for every size.
  for (size_t n = 0; n <= GM_MAX_SMALL_SIZE; n++) {
    size_t c = gm_class_of(n);
    int ok = c >= 1 && c < GM_NUM_SIZE_CLASSES && class_to_size[c] >= n &&
             (c == 1 || class_to_size[c - 1] < n);
    if (!ok) {
      CHECKF(ok, "size %zu -> class %zu", n, c);
      break;
    }
  }
  CHECK(gm_class_of(0) == 1 && gm_class_of(8) == 1 && gm_class_of(9) == 2);
  CHECK(gm_class_of(1024) == 32 && gm_class_of(1025) == 33 && gm_class_of(32768) == 67);
  return test_done();
}
