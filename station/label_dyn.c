/*
 * libqrencode and libpng, loaded when a label is first drawn
 * (imprint/dynlib.h): the functions label.c calls, under their own names,
 * their prototypes checked against qrencode.h's and png.h's.
 */
#include <png.h>
#include <qrencode.h>

#include "dynlibs.h"
#include "imprint/dynlib.h"

#define QR_FUNCTIONS(X, V) \
	X(QRcode *, QRcode_encodeString, (const char *string, int version, QRecLevel level, \
					  QRencodeMode hint, int casesensitive), \
	  (string, version, level, hint, casesensitive)) \
	V(QRcode_free, (QRcode *qrcode), (qrcode))

#define PNG_FUNCTIONS(X, V) \
	X(png_structp, png_create_write_struct, (png_const_charp user_png_ver, png_voidp error_ptr, \
						 png_error_ptr error_fn, png_error_ptr warn_fn), \
	  (user_png_ver, error_ptr, error_fn, warn_fn)) \
	X(png_infop, png_create_info_struct, (png_const_structrp png_ptr), (png_ptr)) \
	X(jmp_buf *, png_set_longjmp_fn, (png_structrp png_ptr, png_longjmp_ptr longjmp_fn, \
					  size_t jmp_buf_size), (png_ptr, longjmp_fn, jmp_buf_size)) \
	V(png_set_write_fn, (png_structrp png_ptr, png_voidp io_ptr, png_rw_ptr write_data_fn, \
			     png_flush_ptr output_flush_fn), \
	  (png_ptr, io_ptr, write_data_fn, output_flush_fn)) \
	X(png_voidp, png_get_io_ptr, (png_const_structrp png_ptr), (png_ptr)) \
	V(png_set_IHDR, (png_const_structrp png_ptr, png_inforp info_ptr, png_uint_32 width, \
			 png_uint_32 height, int bit_depth, int color_type, int interlace_method, \
			 int compression_method, int filter_method), \
	  (png_ptr, info_ptr, width, height, bit_depth, color_type, interlace_method, \
	   compression_method, filter_method)) \
	V(png_write_info, (png_structrp png_ptr, png_const_inforp info_ptr), (png_ptr, info_ptr)) \
	V(png_write_image, (png_structrp png_ptr, png_bytepp image), (png_ptr, image)) \
	V(png_write_end, (png_structrp png_ptr, png_inforp info_ptr), (png_ptr, info_ptr)) \
	V(png_destroy_write_struct, (png_structpp png_ptr_ptr, png_infopp info_ptr_ptr), \
	  (png_ptr_ptr, info_ptr_ptr))

enum { QR_FUNCTIONS(IMP_DYNLIB_ROW_INDEX, IMP_DYNLIB_ROW_INDEX_V) IMP_DL__QR_COUNT };
enum { PNG_FUNCTIONS(IMP_DYNLIB_ROW_INDEX, IMP_DYNLIB_ROW_INDEX_V) IMP_DL__PNG_COUNT };

static const char *const qr_names[] = { QR_FUNCTIONS(IMP_DYNLIB_ROW_NAME, IMP_DYNLIB_ROW_NAME_V) };
static void *qr_fns[IMP_DL__QR_COUNT];
static struct imp_dynlib qr_lib = IMP_DYNLIB("libqrencode.so.4", "libqrencode4", qr_names, qr_fns);

static const char *const png_names[] = {
	PNG_FUNCTIONS(IMP_DYNLIB_ROW_NAME, IMP_DYNLIB_ROW_NAME_V)
};
static void *png_fns[IMP_DL__PNG_COUNT];
static struct imp_dynlib png_lib = IMP_DYNLIB("libpng16.so.16", "libpng16-16", png_names, png_fns);

#define IMP_DYNLIB_SELF qr_lib
QR_FUNCTIONS(IMP_DYNLIB_ROW_WRAP, IMP_DYNLIB_ROW_WRAP_V)
#undef IMP_DYNLIB_SELF
#define IMP_DYNLIB_SELF png_lib
PNG_FUNCTIONS(IMP_DYNLIB_ROW_WRAP, IMP_DYNLIB_ROW_WRAP_V)

imp_err st_label_load(bool with_png)
{
	imp_err rc = imp_dynlib_load(&qr_lib);

	return rc || !with_png ? rc : imp_dynlib_load(&png_lib);
}
