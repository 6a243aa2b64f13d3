"""User-facing text of the Gradio app, in English and Indonesian.

Only strings, the class names shown per language and the choice of language
for a request live here. `app.py` builds the UI from them, and
`app_results.py` renders the results tables with their column headers.
"""

from collections.abc import Mapping

from bone_fracture import DISPLAY_NAMES

# Class names shown to users, per UI language. The English names are the
# library's, and API clients receive them as the keys of the `gr.Label` value.
CLASS_NAMES = {
    "en": DISPLAY_NAMES,
    "id": {"fractured": "Fraktur", "not_fractured": "Normal"},
}
DEFAULT_LANGUAGE = "en"

# UI text per language, keyed like `gr.I18n` expects. Values with {fields} are
# templates for server-side text: error messages and the threshold note of
# a prediction. `app_results.build_translations` adds the keys
# "parameters_table", "comparison_context", "comparison_table",
# "baseline_table" and "cv_table".
UI_TEXT = {
    "en": {
        # Not shown as text: the language of the generated table words, and the decimal separator
        # of numbers rendered on the server.
        "language_code": "en",
        "decimal_separator": ".",
        "app_heading": "# Bone fracture X-ray classifier",
        "disclaimer": (
            "⚠️ **Screening aid for medical staff and students. This app is not a medical "
            "device and must not be used for diagnosis.** A physician or radiologist reviews "
            "every X-ray, whatever the model outputs."
        ),
        "tab_predict": "Predict",
        "tab_preprocessing": "Preprocessing gallery",
        "tab_comparison": "Model comparison",
        "predict_intro": (
            "Upload a radiograph (JPEG, PNG or DICOM) or pick an example, then press **Classify**."
        ),
        "upload_label": "X-ray image (JPEG, PNG or DICOM)",
        "model_label": "Model",
        "classify_button": "Classify",
        "compare_button": "Compare all models on this image",
        "compare_table_label": "All models on this image",
        "examples_label": "Example X-rays",
        "examples_note": (
            "The examples come from the original set's val split, whose radiographs most served models rank in "
            "reverse: they show how the app works, not how well it finds fractures (see the model-comparison tab)."
        ),
        "result_label": "Model output",
        "inference_time_label": "Inference time (ms, model only)",
        "note_model": "Model `{model}`: fracture probability {probability}.",
        "note_thresholds": (
            "Decision threshold {decision_threshold} and screening threshold {screening_threshold}, both "
            "fracture probabilities stored with the model. The screening threshold kept a sensitivity of at "
            "least {screening_sensitivity} on the validation images it was fitted on."
        ),
        "note_uncalibrated": (
            "Decision threshold {decision_threshold} and screening threshold {screening_threshold}: defaults, "
            "because this model has no stored calibration."
        ),
        "note_decision": (
            "At the decision threshold, the model output is **{class_name}**. The output follows that "
            "threshold, not the larger percentage, so the two can differ."
        ),
        "reliability_cv": "Measured performance: ROC-AUC {roc_auc}{interval} per radiograph in cross-validation.",
        "reliability_cv_interval": " (95% CI {low}–{high})",
        "reliability_val_leak_free": (
            "Measured performance on the leak-free val split of the original set: ROC-AUC {roc_auc}, where 0.5 "
            "is chance and lower values rank the classes in reverse. This model folder stores no "
            "cross-validation; the model-comparison tab lists cross-validations of the training recipes."
        ),
        "reliability_none": "Measured performance: not evaluated, because no evaluation results are stored.",
        "reliability_fracatlas": "On the grouped FracAtlas test split: ROC-AUC {roc_auc}.",
        "reliability_fracatlas_screening": (
            "There, the screening threshold reached sensitivity {sensitivity} at specificity {specificity}."
        ),
        "screening_flag": (
            "**Flag for review:** the fracture probability is at or above the screening threshold. "
            "A physician or radiologist should check this X-ray for a fracture."
        ),
        "screening_no_flag": (
            "Not flagged: the fracture probability is below the screening threshold. This does not rule out "
            "a fracture, and the X-ray is still read as usual."
        ),
        "steps_heading": "### Preprocessing steps",
        "step_original": "Original (grayscale)",
        "step_clahe": "CLAHE",
        "step_blurred": "Gaussian blur",
        "step_model_input": "Model input",
        "heatmap_label": "Grad-CAM: regions that raised the fracture score (red)",
        "preprocessing_intro": (
            "Every image passes through the same pipeline before the model sees it: "
            "grayscale, CLAHE (contrast-limited adaptive histogram equalization), Gaussian blur, "
            "then resizing to the model input size. The parameters below are read from the "
            "preprocessor configuration of the model selected by default."
        ),
        "parameter_column": "Parameter",
        "value_column": "Value",
        "param_clip_limit": "CLAHE clip limit",
        "param_tile_grid": "CLAHE tile grid (columns × rows)",
        "param_blur_kernel": "Gaussian blur kernel (pixels)",
        "param_blur_sigma": "Gaussian blur sigma (pixels)",
        "param_input_size": "Model input size (height × width, pixels)",
        "param_resize_mode": "Resizing",
        "resize_stretch": "stretched to the input size",
        "resize_letterbox": "aspect ratio kept, padded with black",
        "blur_disabled": "off",
        "sigma_from_kernel": "0 (OpenCV derives it from the kernel size)",
        "own_image_heading": "### Your own X-ray",
        "show_steps_button": "Show preprocessing steps",
        "example_steps_heading": "### Example X-rays",
        "comparison_intro": (
            "Metrics of every model folder under `models/`, read from its `eval_results.json`. "
            "Recall is the sensitivity for fractures."
        ),
        "split_val": "val ({num_images} images)",
        "split_val_leak_free": "val, leak-free",
        "split_fracatlas_test": "FracAtlas grouped test",
        "transfer_heading": "### Across data sets",
        "transfer_intro": (
            "Each model on the leak-free val of the original set and on a grouped FracAtlas test split "
            "(a fixed fifth of the FracAtlas blocks of 20 image ids, never used in training), also per body "
            "part. Sensitivity and specificity are taken at the model's decision threshold. The brackets give "
            "95% bootstrap intervals that resample whole radiographs or id blocks. A value without brackets "
            "rests on fewer than 5 radiographs or id blocks of a class it depends on, too few to resample. "
            "Runs trained only for this comparison are read from `results/runs/`."
        ),
        "no_transfer_results": (
            "No results across data sets yet. They appear once `eval_results.json` holds `val_leak_free` "
            "or `fracatlas_test`."
        ),
        "column_trained_on": "Trained on",
        "column_input_size": "Input (px)",
        "column_test_set": "Test set",
        "column_sensitivity_ci": "Sensitivity (95% CI)",
        "column_specificity_ci": "Specificity (95% CI)",
        "column_screening_pair": "At the screening threshold: sensitivity / specificity",
        "test_set_body_part": "FracAtlas test, {body_part}",
        "body_part_hand": "hand",
        "body_part_leg": "leg",
        "body_part_hip": "hip",
        "body_part_shoulder": "shoulder",
        "body_part_mixed": "several parts",
        "val_context": (
            "**How far to trust the val numbers.** The val split contains {num_images} images from only "
            "{num_radiographs} source radiographs, so its images are far from independent. The rows "
            "\"{leak_free_split}\" drop the images whose radiograph also occurs in the train split."
        ),
        "val_context_no_counts": (
            "**How far to trust the val numbers.** The val split contains many images of only a few source "
            "radiographs, so its images are far from independent. The rows \"{leak_free_split}\" drop the "
            "images whose radiograph also occurs in the train split."
        ),
        "val_shortcut": (
            "Mean image brightness alone, scoring darker images as fractured, separates the val classes with "
            "a ROC-AUC of {val_roc_auc}, against {train_roc_auc} on the train split. A model can therefore "
            "score well on val without looking at the bone, and the val numbers say little about new "
            "radiographs. Cross-validation over radiographs, below, is the better estimate."
        ),
        "val_shortcut_unknown": (
            "The val numbers therefore say little about new radiographs. Cross-validation over radiographs, "
            "below, is the better estimate."
        ),
        "baseline_intro": (
            "For reference, the original Streamlit + Keras project reported these numbers on the whole val split:"
        ),
        "no_eval_results": (
            "No evaluation results yet. A model appears here once its folder contains "
            "`eval_results.json`."
        ),
        "column_model": "Model",
        "column_split": "Split",
        "column_accuracy": "Accuracy",
        "column_precision": "Precision",
        "column_recall": "Recall (sensitivity)",
        "column_specificity": "Specificity",
        "column_f1": "F1",
        "column_roc_auc": "ROC-AUC",
        "column_num_images": "Images",
        "column_fracture_probability": "Fracture probability",
        "column_predicted_class": "Output at the decision threshold",
        "column_screening_flag": "Flag for review (screening threshold)",
        "flag_yes": "yes",
        "flag_no": "no",
        "column_inference_ms": "Inference time (ms)",
        "cv_heading": "### Cross-validation",
        "cv_intro": (
            "Grouped k-fold cross-validation, read from `cv_results.json` in the model folders and under "
            "`results/cv/`. All images "
            "of one radiograph stay in the same fold. Each metric is the mean over folds, and the brackets "
            "give its 95% confidence interval over folds. At radiograph level, a radiograph's fracture "
            "probability is the mean over its images."
        ),
        "no_cv_results": (
            "No cross-validation results yet. A run appears here once its folder, beside the models or under "
            "`results/cv/`, contains `cv_results.json`."
        ),
        "column_level": "Level",
        "level_image": "per image",
        "level_radiograph": "per radiograph",
        "level_source": "{level}, {source} folds only",
        "column_num_folds": "Folds",
        "column_num_radiographs": "Radiographs",
        "column_roc_auc_ci": "ROC-AUC (95% CI)",
        "plots_heading": "### Plots",
        "no_plots": (
            "No plots yet. A model's plots appear here once its folder contains `learning_curves.png`, "
            "`roc_curve.png` or `confusion_matrix.png`."
        ),
        "plot_learning_curves": "Learning curves",
        "plot_roc_curve": "ROC curves on the test sets named in the legend",
        "plot_confusion_matrix": "Confusion matrices on the test sets named above them, at the model's decision threshold",
        "column_served": "Served here",
        "column_training_data": "Training data",
        "robustness_heading": "### Robustness to acquisition and export differences",
        "robustness_intro": (
            "Each radiograph of a test set, changed in one way at a time (display gamma, contrast, JPEG "
            "re-encoding, half resolution, noise, mirror image) and classified again "
            "(`python -m benchmarks.robustness`, docs/ROBUSTNESS.md). The last column gives the largest share of "
            "radiographs whose decided class changed, and the change that caused it."
        ),
        "no_robustness_results": "No robustness results yet: run `python -m benchmarks.robustness`.",
        "column_roc_auc_unchanged": "ROC-AUC, unchanged",
        "column_roc_auc_range": "ROC-AUC under the changes",
        "column_largest_change": "Most decisions changed",
        "default_model_environment": "Preselected model: `{model}`, set by FRACTURE_MODEL_DIR.",
        "default_model_val_leak_free": (
            "Preselected model: `{model}`, the best ROC-AUC ({roc_auc}) on the leak-free val split of the original "
            "set. That split holds few radiographs, so this is weak evidence: the model-comparison tab has the "
            "other measures."
        ),
        "default_model_val": (
            "Preselected model: `{model}`, the best ROC-AUC ({roc_auc}) on the val split of the original set. That "
            "split holds few radiographs, so this is weak evidence: the model-comparison tab has the other measures."
        ),
        "default_model_name": "Preselected model: `{model}`, the first by name, because no model has a val ROC-AUC.",
        "cv_plots_heading": "### Cross-validation plots",
        "plot_cv_roc_curve": (
            "ROC curve of the pooled test folds, per image and per radiograph. The table gives the mean over "
            "folds, so its ROC-AUC differs a little."
        ),
        "plot_cv_confusion_matrix": "Confusion matrix of the pooled test folds, per image, at the folds' mean decision threshold",
        "error_title": "Invalid file",
        "error_no_file": "No file uploaded. Upload a JPEG, PNG or DICOM (.dcm) X-ray first.",
        "error_empty_file": "{file_name} is empty. Upload a JPEG, PNG or DICOM (.dcm) X-ray.",
        "error_unreadable_file": (
            "{file_name} could not be read as an X-ray image. Upload a JPEG, PNG or DICOM (.dcm) file."
        ),
        "error_damaged_file": (
            "{file_name} is damaged or truncated, so it cannot be decoded completely. Export or copy the "
            "X-ray again and upload the new file."
        ),
        "error_too_large": (
            "{file_name} has more than {max_megapixels} megapixels. Downscale it and upload it again."
        ),
        "error_too_small": (
            "{file_name} is too small for a radiograph. Upload an X-ray of at least {min_side} pixels on each side."
        ),
        "error_blank": (
            "{file_name} has no contrast, because it is blank or a single colour. Upload the radiograph itself."
        ),
        "error_unsupported_compression": (
            "{file_name} is a DICOM file in the transfer syntax {transfer_syntax}, which this app cannot decode. "
            "Export it uncompressed (Explicit VR Little Endian) from the PACS or viewer and upload the new file."
        ),
        "error_no_pixel_data": (
            "{file_name} is a DICOM file without an image (a report or another document). Upload the DICOM "
            "file of the radiograph itself."
        ),
        "error_float_pixel_data": (
            "{file_name} is a DICOM file with floating-point pixels, such as a parametric map, not a radiograph. "
            "Upload the DICOM file of the radiograph itself."
        ),
        "error_dicomdir": (
            "{file_name} is a DICOMDIR, the index of a DICOM disc or folder, not an image. Upload one of the "
            "image files it lists, usually in the disc's DICOM folder."
        ),
        "error_colour": (
            "{file_name} is a colour picture, not a radiograph: X-rays are grayscale. Upload the X-ray image "
            "itself (JPEG, PNG or DICOM)."
        ),
        "error_model_title": "Unknown model",
        "error_unknown_model": "Model {model} not found. Choose one of: {models}.",
    },
    "id": {
        "language_code": "id",
        # Indonesian writes 0,95 where English writes 0.95.
        "decimal_separator": ",",
        "app_heading": "# Klasifikasi fraktur tulang pada citra sinar-X",
        "disclaimer": (
            "⚠️ **Alat bantu skrining untuk tenaga medis dan mahasiswa. Aplikasi ini bukan alat "
            "kesehatan dan tidak boleh digunakan untuk diagnosis.** Dokter atau radiolog "
            "meninjau setiap citra sinar-X, apa pun keluaran modelnya."
        ),
        "tab_predict": "Prediksi",
        "tab_preprocessing": "Galeri prapemrosesan",
        "tab_comparison": "Perbandingan model",
        "predict_intro": (
            "Unggah radiograf (JPEG, PNG, atau DICOM) atau pilih contoh, lalu tekan **Klasifikasi**."
        ),
        "upload_label": "Citra sinar-X (JPEG, PNG, atau DICOM)",
        "model_label": "Model",
        "classify_button": "Klasifikasi",
        "compare_button": "Bandingkan semua model pada citra ini",
        "compare_table_label": "Semua model pada citra ini",
        "examples_label": "Contoh citra sinar-X",
        "examples_note": (
            "Contoh berasal dari subset val set asli, yang radiografnya diurutkan terbalik oleh sebagian besar "
            "model yang disajikan: contoh menunjukkan cara kerja aplikasi, bukan seberapa baik aplikasi "
            "menemukan fraktur (lihat tab perbandingan model)."
        ),
        "result_label": "Keluaran model",
        "inference_time_label": "Waktu inferensi (ms, model saja)",
        "note_model": "Model `{model}`: probabilitas fraktur {probability}.",
        "note_thresholds": (
            "Ambang keputusan {decision_threshold} dan ambang skrining {screening_threshold}, keduanya "
            "probabilitas fraktur yang disimpan bersama model. Ambang skrining mempertahankan sensitivitas "
            "minimal {screening_sensitivity} pada citra validasi yang dipakai untuk menetapkannya."
        ),
        "note_uncalibrated": (
            "Ambang keputusan {decision_threshold} dan ambang skrining {screening_threshold}: nilai bawaan, "
            "karena model ini tidak menyimpan kalibrasi."
        ),
        "note_decision": (
            "Pada ambang keputusan, keluaran model adalah **{class_name}**. Keluaran mengikuti ambang itu, "
            "bukan persentase yang lebih besar, sehingga keduanya bisa berbeda."
        ),
        "reliability_cv": "Kinerja terukur: ROC-AUC {roc_auc}{interval} per radiograf dalam validasi silang.",
        "reliability_cv_interval": " (IK 95% {low}–{high})",
        "reliability_val_leak_free": (
            "Kinerja terukur pada subset val bebas kebocoran dari set asli: ROC-AUC {roc_auc}, dengan 0,5 "
            "setara tebakan acak dan nilai di bawahnya berarti urutan kelas terbalik. Folder model ini tidak "
            "menyimpan validasi silang; tab perbandingan model memuat validasi silang dari resep pelatihan."
        ),
        "reliability_none": "Kinerja terukur: belum dievaluasi, karena hasil evaluasi tidak tersimpan.",
        "reliability_fracatlas": "Pada split uji FracAtlas berkelompok: ROC-AUC {roc_auc}.",
        "reliability_fracatlas_screening": (
            "Di sana, ambang skrining mencapai sensitivitas {sensitivity} pada spesifisitas {specificity}."
        ),
        "screening_flag": (
            "**Tandai untuk ditinjau:** probabilitas fraktur sama dengan atau di atas ambang skrining. "
            "Dokter atau radiolog perlu memeriksa citra sinar-X ini untuk kemungkinan fraktur."
        ),
        "screening_no_flag": (
            "Tidak ditandai: probabilitas fraktur di bawah ambang skrining. Hal ini tidak menyingkirkan "
            "fraktur, dan citra sinar-X tetap dibaca seperti biasa."
        ),
        "steps_heading": "### Tahap prapemrosesan",
        "step_original": "Asli (skala abu-abu)",
        "step_clahe": "CLAHE",
        "step_blurred": "Gaussian blur",
        "step_model_input": "Masukan model",
        "heatmap_label": "Grad-CAM: area yang menaikkan skor fraktur (merah)",
        "preprocessing_intro": (
            "Setiap citra melewati alur yang sama sebelum diproses model: skala abu-abu, "
            "CLAHE (contrast-limited adaptive histogram equalization), Gaussian blur, lalu "
            "pengubahan ukuran ke ukuran masukan model. Parameter di bawah dibaca dari "
            "konfigurasi praprosesor model yang dipilih secara bawaan."
        ),
        "parameter_column": "Parameter",
        "value_column": "Nilai",
        "param_clip_limit": "Batas klip CLAHE",
        "param_tile_grid": "Grid petak CLAHE (kolom × baris)",
        "param_blur_kernel": "Kernel Gaussian blur (piksel)",
        "param_blur_sigma": "Sigma Gaussian blur (piksel)",
        "param_input_size": "Ukuran masukan model (tinggi × lebar, piksel)",
        "param_resize_mode": "Pengubahan ukuran",
        "resize_stretch": "diregangkan ke ukuran masukan",
        "resize_letterbox": "rasio aspek dipertahankan, diisi hitam",
        "blur_disabled": "nonaktif",
        "sigma_from_kernel": "0 (OpenCV menurunkannya dari ukuran kernel)",
        "own_image_heading": "### Citra sinar-X Anda",
        "show_steps_button": "Tampilkan tahap prapemrosesan",
        "example_steps_heading": "### Contoh citra sinar-X",
        "comparison_intro": (
            "Metrik setiap folder model di `models/`, dibaca dari berkas `eval_results.json` "
            "di folder tersebut. Recall adalah sensitivitas untuk fraktur."
        ),
        "split_val": "val ({num_images} citra)",
        "split_val_leak_free": "val, bebas kebocoran",
        "split_fracatlas_test": "uji FracAtlas berkelompok",
        "transfer_heading": "### Antar-set data",
        "transfer_intro": (
            "Setiap model pada val bebas kebocoran dari set asli dan pada split uji FracAtlas berkelompok "
            "(seperlima tetap dari blok 20 ID citra FracAtlas, tidak pernah dipakai untuk pelatihan), juga "
            "per bagian tubuh. Sensitivitas dan spesifisitas diambil pada ambang keputusan model. Tanda kurung "
            "memuat interval bootstrap 95% yang mengambil ulang radiograf atau blok ID secara utuh. Nilai tanpa "
            "tanda kurung bertumpu pada kurang dari 5 radiograf atau blok ID dari kelas yang dibutuhkannya, "
            "terlalu sedikit untuk diambil ulang. Pelatihan yang dijalankan hanya untuk perbandingan ini dibaca "
            "dari `results/runs/`."
        ),
        "no_transfer_results": (
            "Belum ada hasil antar-set data. Hasil muncul setelah `eval_results.json` memuat "
            "`val_leak_free` atau `fracatlas_test`."
        ),
        "column_trained_on": "Dilatih pada",
        "column_input_size": "Masukan (px)",
        "column_test_set": "Set uji",
        "column_sensitivity_ci": "Sensitivitas (IK 95%)",
        "column_specificity_ci": "Spesifisitas (IK 95%)",
        "column_screening_pair": "Pada ambang skrining: sensitivitas / spesifisitas",
        "test_set_body_part": "uji FracAtlas, {body_part}",
        "body_part_hand": "tangan",
        "body_part_leg": "tungkai",
        "body_part_hip": "panggul",
        "body_part_shoulder": "bahu",
        "body_part_mixed": "beberapa bagian",
        "val_context": (
            "**Seberapa jauh angka val dapat dipercaya.** Subset val berisi {num_images} citra dari hanya "
            "{num_radiographs} radiograf sumber, sehingga citra-citranya jauh dari independen. Baris "
            "\"{leak_free_split}\" membuang citra yang radiografnya juga muncul di subset train."
        ),
        "val_context_no_counts": (
            "**Seberapa jauh angka val dapat dipercaya.** Subset val berisi banyak citra dari hanya sedikit "
            "radiograf sumber, sehingga citra-citranya jauh dari independen. Baris \"{leak_free_split}\" "
            "membuang citra yang radiografnya juga muncul di subset train."
        ),
        "val_shortcut": (
            "Rata-rata kecerahan citra saja, dengan menilai citra yang lebih gelap sebagai fraktur, sudah "
            "memisahkan kelas-kelas val dengan ROC-AUC {val_roc_auc}, dibandingkan {train_roc_auc} pada subset "
            "train. Karena itu, model dapat mencetak skor tinggi pada val tanpa melihat tulang, dan angka val "
            "hanya sedikit memberi tahu tentang radiograf baru. Validasi silang antar-radiograf, di bawah, "
            "adalah perkiraan yang lebih baik."
        ),
        "val_shortcut_unknown": (
            "Karena itu, angka val hanya sedikit memberi tahu tentang radiograf baru. Validasi silang "
            "antar-radiograf, di bawah, adalah perkiraan yang lebih baik."
        ),
        "baseline_intro": (
            "Sebagai pembanding, proyek asli (Streamlit + Keras) melaporkan angka berikut pada seluruh subset val:"
        ),
        "no_eval_results": (
            "Belum ada hasil evaluasi. Sebuah model muncul di sini setelah foldernya berisi "
            "`eval_results.json`."
        ),
        "column_model": "Model",
        "column_split": "Subset data",
        "column_accuracy": "Akurasi",
        "column_precision": "Presisi",
        "column_recall": "Recall (sensitivitas)",
        "column_specificity": "Spesifisitas",
        "column_f1": "F1",
        "column_roc_auc": "ROC-AUC",
        "column_num_images": "Jumlah citra",
        "column_fracture_probability": "Probabilitas fraktur",
        "column_predicted_class": "Keluaran pada ambang keputusan",
        "column_screening_flag": "Tandai untuk ditinjau (ambang skrining)",
        "flag_yes": "ya",
        "flag_no": "tidak",
        "column_inference_ms": "Waktu inferensi (ms)",
        "cv_heading": "### Validasi silang",
        "cv_intro": (
            "Validasi silang k-fold berkelompok, dibaca dari berkas `cv_results.json` di folder model dan "
            "di bawah `results/cv/`. Semua citra dari satu radiograf berada di fold yang sama. Setiap metrik adalah rata-rata "
            "antar-fold, dan tanda kurung memuat interval kepercayaan 95% antar-fold. Pada tingkat radiograf, "
            "probabilitas fraktur sebuah radiograf adalah rata-rata dari citra-citranya."
        ),
        "no_cv_results": (
            "Belum ada hasil validasi silang. Sebuah run muncul di sini setelah foldernya, di samping model "
            "atau di bawah `results/cv/`, berisi `cv_results.json`."
        ),
        "column_level": "Tingkat",
        "level_image": "per citra",
        "level_radiograph": "per radiograf",
        "level_source": "{level}, hanya fold {source}",
        "column_num_folds": "Jumlah fold",
        "column_num_radiographs": "Jumlah radiograf",
        "column_roc_auc_ci": "ROC-AUC (IK 95%)",
        "plots_heading": "### Grafik",
        "no_plots": (
            "Belum ada grafik. Grafik sebuah model muncul di sini setelah foldernya berisi "
            "`learning_curves.png`, `roc_curve.png`, atau `confusion_matrix.png`."
        ),
        "plot_learning_curves": "Kurva pembelajaran",
        "plot_roc_curve": "Kurva ROC pada set uji yang disebut di legenda",
        "plot_confusion_matrix": "Matriks konfusi pada set uji yang disebut di atasnya, pada ambang keputusan model",
        "column_served": "Disajikan di sini",
        "column_training_data": "Data latih",
        "robustness_heading": "### Ketahanan terhadap perbedaan akuisisi dan ekspor",
        "robustness_intro": (
            "Setiap radiograf dari sebuah set uji diubah dengan satu cara setiap kali (gamma tampilan, kontras, "
            "penyandian ulang JPEG, setengah resolusi, derau, citra cermin) lalu diklasifikasikan lagi "
            "(`python -m benchmarks.robustness`, docs/ROBUSTNESS.md). Kolom terakhir memberi bagian terbesar "
            "radiograf yang kelas keputusannya berubah, dan perubahan penyebabnya."
        ),
        "no_robustness_results": "Belum ada hasil ketahanan: jalankan `python -m benchmarks.robustness`.",
        "column_roc_auc_unchanged": "ROC-AUC, tanpa perubahan",
        "column_roc_auc_range": "ROC-AUC dengan perubahan",
        "column_largest_change": "Keputusan paling banyak berubah",
        "default_model_environment": "Model terpilih: `{model}`, ditetapkan oleh FRACTURE_MODEL_DIR.",
        "default_model_val_leak_free": (
            "Model terpilih: `{model}`, ROC-AUC terbaik ({roc_auc}) pada subset val bebas kebocoran dari set asli. "
            "Subset itu hanya memuat sedikit radiograf, jadi ini bukti yang lemah: tab perbandingan model memuat "
            "ukuran lainnya."
        ),
        "default_model_val": (
            "Model terpilih: `{model}`, ROC-AUC terbaik ({roc_auc}) pada subset val dari set asli. Subset itu hanya "
            "memuat sedikit radiograf, jadi ini bukti yang lemah: tab perbandingan model memuat ukuran lainnya."
        ),
        "default_model_name": (
            "Model terpilih: `{model}`, yang pertama menurut nama, karena tidak ada model yang memiliki ROC-AUC val."
        ),
        "cv_plots_heading": "### Grafik validasi silang",
        "plot_cv_roc_curve": (
            "Kurva ROC gabungan fold uji, per citra dan per radiograf. Tabel memberi rerata atas fold, jadi "
            "ROC-AUC-nya sedikit berbeda."
        ),
        "plot_cv_confusion_matrix": "Matriks konfusi gabungan fold uji, per citra, pada rerata ambang keputusan fold",
        "error_title": "Berkas tidak valid",
        "error_no_file": (
            "Belum ada berkas yang diunggah. Unggah citra sinar-X JPEG, PNG, atau DICOM (.dcm) "
            "terlebih dahulu."
        ),
        "error_empty_file": "{file_name} kosong. Unggah citra sinar-X JPEG, PNG, atau DICOM (.dcm).",
        "error_unreadable_file": (
            "{file_name} tidak dapat dibaca sebagai citra sinar-X. Unggah berkas JPEG, PNG, atau "
            "DICOM (.dcm)."
        ),
        "error_damaged_file": (
            "{file_name} rusak atau terpotong, sehingga tidak dapat dibaca sepenuhnya. Ekspor atau salin "
            "ulang citra sinar-X lalu unggah berkas yang baru."
        ),
        "error_too_large": (
            "{file_name} berukuran lebih dari {max_megapixels} megapiksel. Perkecil citra lalu "
            "unggah kembali."
        ),
        "error_too_small": (
            "{file_name} terlalu kecil untuk sebuah radiograf. Unggah citra sinar-X berukuran minimal "
            "{min_side} piksel pada setiap sisi."
        ),
        "error_blank": (
            "{file_name} tidak memiliki kontras, karena kosong atau hanya satu warna. Unggah radiografnya."
        ),
        "error_unsupported_compression": (
            "{file_name} adalah berkas DICOM dengan transfer syntax {transfer_syntax}, yang tidak dapat dibaca "
            "aplikasi ini. Ekspor ulang tanpa kompresi (Explicit VR Little Endian) dari PACS atau penampil "
            "lalu unggah berkas yang baru."
        ),
        "error_no_pixel_data": (
            "{file_name} adalah berkas DICOM tanpa citra (laporan atau dokumen lain). Unggah berkas DICOM "
            "radiografnya sendiri."
        ),
        "error_float_pixel_data": (
            "{file_name} adalah berkas DICOM dengan piksel bilangan pecahan (floating-point), misalnya peta "
            "parametrik, bukan radiograf. Unggah berkas DICOM radiografnya sendiri."
        ),
        "error_dicomdir": (
            "{file_name} adalah DICOMDIR, indeks dari cakram atau folder DICOM, bukan citra. Unggah salah satu "
            "berkas citra yang didaftarkannya, biasanya di folder DICOM pada cakram tersebut."
        ),
        "error_colour": (
            "{file_name} adalah gambar berwarna, bukan radiograf: citra sinar-X berwarna abu-abu. Unggah "
            "citra sinar-X-nya sendiri (JPEG, PNG, atau DICOM)."
        ),
        "error_model_title": "Model tidak dikenal",
        "error_unknown_model": "Model {model} tidak ditemukan. Pilih salah satu: {models}.",
    },
}


# Names of the changes in docs/ROBUSTNESS.json, per UI language. English uses the file's own names.
ROBUSTNESS_CHANGE_NAMES = {
    "id": {
        "gamma 0.8": "gamma 0,8",
        "gamma 1.25": "gamma 1,25",
        "contrast x0.8": "kontras x0,8",
        "JPEG quality 50": "JPEG kualitas 50",
        "half resolution": "setengah resolusi",
        "noise sigma 8": "derau sigma 8",
        "mirror image": "citra cermin",
    },
}


# NOTE: Gradio 6.31 shows an I18n title as its raw key in the browser tab, so
# the tab title carries both languages.
PAGE_TITLE = "Bone fracture X-ray classifier · Klasifikasi fraktur tulang"


def format_decimal(value: float, digits: int, text: Mapping[str, str]) -> str:
    """Format `value` with `digits` decimals and the decimal separator of the language of `text`."""
    return f"{value:.{digits}f}".replace(".", text["decimal_separator"])


# Primary language subtags that browsers may still send for a supported language.
LANGUAGE_ALIASES = {"in": "id"}


def pick_language(accept_language: str | None) -> str:
    """Choose the UI language for server-side text from an Accept-Language header.

    Takes the supported language with the highest quality value and falls back
    to English, which is also what API clients without the header get. A
    quality of 0 means "not acceptable"; "in", the withdrawn code for
    Indonesian, counts as "id".
    """
    candidates = []
    for position, entry in enumerate((accept_language or "").split(",")):
        tag, *parameters = (part.strip() for part in entry.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = (part.strip() for part in parameter.partition("="))
            if key.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = LANGUAGE_ALIASES.get(tag.split("-")[0].lower(), tag.split("-")[0].lower())
        if quality > 0:
            # Ties keep header order, so the position breaks them.
            candidates.append((-quality, position, language))

    for _, _, language in sorted(candidates):
        if language in UI_TEXT:
            return language
    return DEFAULT_LANGUAGE
